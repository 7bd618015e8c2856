"""A llama-family student written as one GGUF file, for llama.cpp and the tools built on it.

The ``gguf`` package (llama.cpp's own Python writer) does the format: its tensor-name map
turns Hugging Face names into GGUF ones and its quantizer packs ``q8_0`` blocks; what is written
here is what llama.cpp's ``convert_hf_to_gguf.py`` would write for a llama: the config as
``llama.*`` keys, query and key projections permuted to llama.cpp's rotary layout (transformers'
GGUF loader undoes it), one-dimensional tensors in f32, a byte-level BPE tokenizer as
``tokenizer.ggml.*`` (its vocabulary, merges and special ids). A tied output head is left out,
as llama.cpp expects. :func:`check_gguf` loads the file back with transformers alone (no
``distill`` code) and compares its logits with the model's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from distill import atomic

GGUFType = Literal["f32", "f16", "q8_0"]
FAMILIES = ("llama", "mistral")  # llama.cpp reads both as its llama architecture
Q8_BLOCK = 32  # q8_0 packs rows in blocks of 32 values


def _require_gguf() -> Any:
    try:
        import gguf
    except ImportError as err:
        raise ImportError("GGUF export needs the gguf package: pip install 'distill[hf]' (or "
                          "pip install gguf)") from err
    return gguf


def gguf_problems(config: Any, tokenizer: Any) -> list[str]:
    """Why ``config`` and ``tokenizer`` cannot be written as GGUF here, in words (none: they
    can); what ``distill run --check`` asks before a run that exports."""
    problems = []
    kind = getattr(config, "model_type", None)
    if kind not in FAMILIES:
        problems.append(f"GGUF export supports the llama family ({', '.join(FAMILIES)}; "
                        f"SmolLM2 and Llama are llama); this model is {kind!r}")
    for flag in ("attention_bias", "mlp_bias"):
        if getattr(config, flag, False):
            problems.append(f"GGUF export: {flag} = true has no place in llama.cpp's llama")
    rope = getattr(config, "rope_parameters", None) or {}
    if rope.get("rope_type", "default") != "default":
        problems.append(f"GGUF export: rope scaling {rope.get('rope_type')!r} is not written; "
                        "only plain rotary embeddings are")
    backend = getattr(tokenizer, "backend_tokenizer", None)
    state = json.loads(backend.to_str()) if backend is not None else {}
    model = state.get("model", {}).get("type", type(tokenizer).__name__)
    if model != "BPE" or "ByteLevel" not in json.dumps(state.get("pre_tokenizer")):
        problems.append("GGUF export writes byte-level BPE tokenizers (GPT-2 style, as "
                        f"SmolLM2's); this one is a {model} tokenizer")
    return problems


def _permute(weights: np.ndarray, heads: int) -> np.ndarray:
    """Hugging Face's rotary halves → llama.cpp's interleaved pairs, per head."""
    rows = weights.shape[0] // heads // 2
    return (weights.reshape(heads, 2, rows, *weights.shape[1:]).swapaxes(1, 2)
            .reshape(weights.shape))


def _tensor_type(gguf: Any, data: np.ndarray, kind: GGUFType) -> tuple[np.ndarray, Any]:
    quant = gguf.GGMLQuantizationType
    if data.ndim == 1 or kind == "f32":
        return data.astype(np.float32), quant.F32
    if kind == "q8_0" and data.shape[-1] % Q8_BLOCK == 0:
        return gguf.quants.quantize(data.astype(np.float32), quant.Q8_0), quant.Q8_0
    return data.astype(np.float16), quant.F16  # f16, or a row q8_0 cannot block


def _write_tokenizer(writer: Any, gguf: Any, tokenizer: Any, vocab_size: int, pre: str) -> None:
    model = json.loads(tokenizer.backend_tokenizer.to_str()).get("model", {})
    by_id = {i: token for token, i in tokenizer.get_vocab().items()}
    special = set(getattr(tokenizer, "all_special_ids", []))
    tokens, types = [], []
    for i in range(vocab_size):
        token = by_id.get(i)
        tokens.append(token if token is not None else f"[PAD{i}]")
        types.append(gguf.TokenType.CONTROL if i in special else
                     gguf.TokenType.NORMAL if token is not None else gguf.TokenType.UNUSED)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    for name in ("bos", "eos", "unk", "pad"):
        token_id = getattr(tokenizer, f"{name}_token_id", None)
        if token_id is not None:
            getattr(writer, f"add_{name}_token_id")(int(token_id))
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, str):
        writer.add_chat_template(template)


def export_gguf(model: nn.Module, tokenizer: Any, path: str | Path, *,
                dtype: GGUFType = "f16", name: str | None = None,
                pre_tokenizer: str = "default") -> Path:
    """Write ``model`` (a llama-family causal LM) and its ``tokenizer`` to ``path``.

    ``dtype``: ``f32``, ``f16`` or ``q8_0`` (8-bit blocks of 32; a matrix whose rows do not
    divide into blocks is written f16); norms stay f32. ``pre_tokenizer`` is llama.cpp's name
    for the tokenizer's splitting rules (``"smollm"`` for SmolLM2; ``"default"`` otherwise).
    The file appears whole or not at all.
    """
    gguf = _require_gguf()
    config = model.config
    problems = gguf_problems(config, tokenizer)
    if problems:
        raise ValueError("; ".join(problems))
    if dtype not in ("f32", "f16", "q8_0"):
        raise ValueError(f"dtype must be 'f32', 'f16' or 'q8_0', got {dtype!r}")
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    rope = getattr(config, "rope_parameters", None) or {}
    theta = rope.get("rope_theta", getattr(config, "rope_theta", 10000.0))
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config.num_hidden_layers)
    file_type = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
                 "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[dtype]

    def write(tmp: Path) -> None:
        writer = gguf.GGUFWriter(tmp, "llama")
        writer.add_name(name or getattr(config, "_name_or_path", "") or "distill-student")
        writer.add_context_length(config.max_position_embeddings)
        writer.add_embedding_length(config.hidden_size)
        writer.add_block_count(config.num_hidden_layers)
        writer.add_feed_forward_length(config.intermediate_size)
        writer.add_head_count(heads)
        writer.add_head_count_kv(kv_heads)
        writer.add_rope_dimension_count(head_dim)
        writer.add_rope_freq_base(float(theta))
        writer.add_layer_norm_rms_eps(float(config.rms_norm_eps))
        writer.add_vocab_size(config.vocab_size)
        writer.add_file_type(file_type)
        _write_tokenizer(writer, gguf, tokenizer, config.vocab_size, pre_tokenizer)
        tied = bool(getattr(config, "tie_word_embeddings", False))
        for key, tensor in model.state_dict().items():
            if tied and key == "lm_head.weight":
                continue  # llama.cpp reads the embeddings as the head when output is absent
            mapped = names.get_name(key, try_suffixes=(".weight", ".bias"))
            if mapped is None:
                raise ValueError(f"GGUF export: no llama.cpp name for the tensor {key!r}")
            data = tensor.detach().to(torch.float32).cpu().numpy()
            if key.endswith("q_proj.weight"):
                data = _permute(data, heads)
            elif key.endswith("k_proj.weight"):
                data = _permute(data, kv_heads)
            packed, kind = _tensor_type(gguf, data, dtype)
            writer.add_tensor(mapped, packed, raw_dtype=kind)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_with(path, write)
    return path


@dataclass(frozen=True)
class GGUFCheck:
    """How the GGUF file's logits, loaded back by transformers, compare with the model's."""

    max_abs_diff: float  # largest logit difference
    logit_std: float  # the model's own logit spread, the scale to read max_abs_diff against
    top1_agreement: float  # share of positions whose most likely next token is the same
    perplexity: float = float("nan")  # the file's, on the ids' own next tokens
    model_perplexity: float = float("nan")  # the model's, on the same tokens

    @property
    def relative(self) -> float:
        return self.max_abs_diff / max(self.logit_std, 1e-12)

    @property
    def perplexity_change(self) -> float:
        """The file's perplexity over the model's, less one: the number to judge a quantized
        file by (the largest logit difference is one outlier position; measured on SmolLM2
        students, positions after a separator token carry activations large enough to move
        one logit by several units in f16 while the perplexity moves by 0.02%)."""
        return self.perplexity / self.model_perplexity - 1.0


@torch.inference_mode()
def check_gguf(path: str | Path, model: nn.Module, input_ids: torch.Tensor) -> GGUFCheck:
    """Load ``path`` with transformers' GGUF loader (no distill code) and compare logits on
    ``input_ids`` (a batch of token ids) with ``model``'s, and both perplexities on the ids'
    own next tokens."""
    import transformers

    path = Path(path)
    loaded = transformers.AutoModelForCausalLM.from_pretrained(
        path.parent, gguf_file=path.name, dtype=torch.float32).eval()
    was_training = model.training
    model.eval()
    try:
        expected = model(input_ids=input_ids).logits.float()
    finally:
        model.train(was_training)
    got = loaded(input_ids=input_ids).logits.float()
    if got.shape != expected.shape:
        raise ValueError(f"{path}: logits of shape {tuple(got.shape)}, the model's are "
                         f"{tuple(expected.shape)}")
    return GGUFCheck(float((got - expected).abs().max()), float(expected.std()),
                     float((got.argmax(-1) == expected.argmax(-1)).float().mean()),
                     _perplexity(got, input_ids), _perplexity(expected, input_ids))


def _perplexity(logits: torch.Tensor, input_ids: torch.Tensor) -> float:
    """exp of the mean next-token loss of ``logits`` on ``input_ids`` themselves."""
    if input_ids.shape[-1] < 2:
        return float("nan")
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                                             input_ids[:, 1:].reshape(-1))
    return float(loss.exp())
