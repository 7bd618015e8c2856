"""Trimming a model's vocabulary to the tokens its domain uses.

MiniLM's 30,522 × 384 embedding table is half of a 6-block MiniLM and most of a 2-block one,
yet a review corpus uses a few thousand of those tokens. Dropping the rows no domain text
reaches shrinks the student's files without changing a single output on that text: the kept
rows are the same vectors under new numbers.

The tokenizer is rewritten to number the kept tokens ``0..n-1`` (its ``tokenizer.json``
edited, nothing else), so the trimmed student and its tokenizer load with plain transformers
(or tokenizers + ONNX Runtime) and need no remapping layer at run time. Word-piece and
word-level vocabularies can be trimmed: a word-piece tokenizer picks the longest known piece
first, so every word whose pieces are all kept is cut exactly as before. BPE and unigram
vocabularies cannot (a BPE merge table refers to tokens that a domain may never emit), and
are refused with that reason.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

TRIMMABLE = ("WordPiece", "WordLevel")


@dataclass
class TrimmedVocabulary:
    """A trimmed model and tokenizer; ``kept[i]`` is the old id of new token ``i``."""

    model: nn.Module
    tokenizer: Any
    kept: Tensor
    parameters_before: int
    parameters_after: int

    @property
    def old_to_new(self) -> Tensor:
        """Old id -> new id; ids that were dropped map to the new unknown token."""
        unk = int(self.tokenizer.unk_token_id)
        table = torch.full((int(self.kept.max()) + 1,), unk, dtype=torch.long)
        table[self.kept] = torch.arange(len(self.kept))
        return table

    def remap(self, input_ids: Tensor) -> Tensor:
        """Ids from the original tokenizer, as the trimmed model numbers them (ids past the
        largest kept one, and dropped ids, become the unknown token)."""
        table = self.old_to_new
        unk = int(self.tokenizer.unk_token_id)
        inside = input_ids < len(table)
        return torch.where(inside, table[input_ids.clamp(max=len(table) - 1)], unk)


def _backend(tokenizer: Any) -> dict[str, Any]:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ValueError(f"vocabulary trimming needs a fast tokenizer (tokenizer.json); "
                         f"{type(tokenizer).__name__} is a slow one: load it with use_fast=True")
    state = json.loads(backend.to_str())
    kind = state.get("model", {}).get("type")
    if kind not in TRIMMABLE:
        raise ValueError(
            f"vocabulary trimming supports {' and '.join(TRIMMABLE)} tokenizers (BERT-family "
            f"models such as MiniLM); this one is {kind}, whose merges or scores refer to "
            "tokens a domain may never emit, so dropping them would change how words are cut")
    return state


def used_token_ids(tokenizer: Any, texts: Iterable[str], batch: int = 512) -> set[int]:
    """Every id the tokenizer gives ``texts`` (special tokens included)."""
    used: set[int] = set()
    chunk: list[str] = []
    for text in texts:
        chunk.append(text)
        if len(chunk) == batch:
            used.update(i for ids in tokenizer(chunk)["input_ids"] for i in ids)
            chunk = []
    if chunk:
        used.update(i for ids in tokenizer(chunk)["input_ids"] for i in ids)
    return used


def _single_characters(vocab: dict[str, int], prefix: str) -> set[int]:
    """Ids of one-character tokens (and their word-continuing forms): any word spelled from
    them is still cut into known pieces, never into one unknown token."""
    return {i for token, i in vocab.items()
            if len(token) == 1 or (prefix and token.startswith(prefix)
                                   and len(token) == len(prefix) + 1)}


def _trimmed_tokenizer(tokenizer: Any, state: dict[str, Any], kept: Sequence[int]) -> Any:
    """The tokenizer with only ``kept`` tokens, numbered in their old order."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    new_id = {old: new for new, old in enumerate(kept)}
    state = copy.deepcopy(state)
    state["model"]["vocab"] = {token: new_id[i] for token, i in state["model"]["vocab"].items()
                               if i in new_id}
    state["added_tokens"] = [{**t, "id": new_id[t["id"]]} for t in state.get("added_tokens") or []
                             if t["id"] in new_id]
    post = state.get("post_processor")
    for processor in ([post] if post else []) + list((post or {}).get("processors") or []):
        for special in (processor.get("special_tokens") or {}).values():
            special["ids"] = [new_id[i] for i in special["ids"]]
        for key in ("cls", "sep"):  # BertProcessing/RobertaProcessing: [token, id]
            if isinstance(processor.get(key), list):
                processor[key] = [processor[key][0], new_id[processor[key][1]]]
    if state.get("padding") and "pad_id" in state["padding"]:
        state["padding"]["pad_id"] = new_id[state["padding"]["pad_id"]]
    specials = {k: v for k, v in tokenizer.special_tokens_map.items() if isinstance(v, str)}
    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(json.dumps(state)),
        model_max_length=tokenizer.model_max_length, padding_side=tokenizer.padding_side,
        truncation_side=tokenizer.truncation_side,
        model_input_names=list(tokenizer.model_input_names), **specials)


def _trim_rows(layer: nn.Module, kept: Tensor) -> None:
    """Keep rows ``kept`` of an embedding table or an output layer (and its bias)."""
    size = layer.weight.shape[0]
    layer.weight = nn.Parameter(layer.weight.detach()[kept].clone())
    bias = getattr(layer, "bias", None)
    if isinstance(bias, Tensor) and bias.dim() == 1 and bias.shape[0] == size:
        layer.bias = nn.Parameter(bias.detach()[kept].clone())


def trim_vocabulary(
    model: nn.Module,
    tokenizer: Any,
    texts: Iterable[str],
    *,
    keep_characters: bool = True,
) -> TrimmedVocabulary:
    """``model`` and ``tokenizer`` keeping only the tokens ``texts`` use (plus the special
    tokens, and with ``keep_characters`` every one-character piece, so new words are spelled
    out rather than lost). The model is copied, not changed in place.

    Use the domain's training text: outputs on any text whose words are all cut into kept
    pieces are exactly the untrimmed model's.
    """
    state = _backend(tokenizer)
    vocab: dict[str, int] = state["model"]["vocab"]
    size = model.get_input_embeddings().weight.shape[0]
    if max(vocab.values()) >= size:
        raise ValueError(f"the tokenizer has ids up to {max(vocab.values())} but the model's "
                         f"embedding table has {size} rows: not this model's tokenizer")
    keep = used_token_ids(tokenizer, texts)
    keep |= set(tokenizer.all_special_ids) | {t["id"] for t in state.get("added_tokens") or []}
    if keep_characters:
        keep |= _single_characters(vocab, state["model"].get("continuing_subword_prefix") or "")
    kept = torch.tensor(sorted(i for i in keep if i < size), dtype=torch.long)
    before = sum(p.numel() for p in model.parameters())
    trimmed = copy.deepcopy(model)
    inputs = trimmed.get_input_embeddings()
    output = trimmed.get_output_embeddings() if hasattr(trimmed, "get_output_embeddings") else None
    tied = output is not None and output.weight is inputs.weight
    _trim_rows(inputs, kept)
    inputs.num_embeddings = len(kept)
    if output is not None and output.weight.shape[0] == size:
        if tied:
            output.weight = inputs.weight
        else:
            _trim_rows(output, kept)
        output.out_features = len(kept)
    new_tokenizer = _trimmed_tokenizer(tokenizer, state, kept.tolist())
    new_id = {int(old): new for new, old in enumerate(kept.tolist())}  # dropped ids: None
    config = getattr(trimmed, "config", None)
    if config is not None:
        config.vocab_size = len(kept)
        for name in ("pad_token_id", "bos_token_id", "eos_token_id", "sep_token_id",
                     "cls_token_id"):
            old = getattr(config, name, None)
            if isinstance(old, int):
                setattr(config, name, new_id.get(old))
    if getattr(inputs, "padding_idx", None) is not None:
        inputs.padding_idx = new_id.get(inputs.padding_idx)
    after = sum(p.numel() for p in trimmed.parameters())
    return TrimmedVocabulary(trimmed, new_tokenizer, kept, before, after)


def tokenized_alike(original: Any, trimmed: TrimmedVocabulary, texts: Sequence[str]
                    ) -> dict[str, float]:
    """How the trimmed tokenizer treats ``texts`` (say, held-out text the trimming never saw):
    the share of texts cut into exactly the same pieces as before, and the share of tokens
    that are now unknown."""
    same = unknown = tokens = 0
    unk = trimmed.tokenizer.unk_token_id
    for text in texts:
        before = original.convert_ids_to_tokens(original(text)["input_ids"])
        ids = trimmed.tokenizer(text)["input_ids"]
        same += int(before == trimmed.tokenizer.convert_ids_to_tokens(ids))
        unknown += sum(i == unk for i in ids)
        tokens += len(ids)
    return {"texts_alike": same / max(1, len(texts)), "unknown_tokens": unknown / max(1, tokens)}


class RemappedEmbedding(nn.Module):
    """An embedding table of the kept rows that still takes the original token ids: the
    tokenizer stays as it was, and an ONNX export carries the mapping in its graph (one
    integer lookup). Ids that were dropped share one extra row, the mean of the dropped
    vectors: text the trimming never saw degrades gently instead of failing."""

    def __init__(self, table: nn.Embedding, kept: Tensor):
        super().__init__()
        weight = table.weight.detach()
        dropped = torch.ones(len(weight), dtype=torch.bool)
        dropped[kept] = False
        unknown = weight[dropped].mean(0, keepdim=True) if dropped.any() else weight[:1] * 0
        self.embedding = nn.Embedding.from_pretrained(
            torch.cat([weight[kept], unknown]).clone(), freeze=False)
        old_to_new = torch.full((len(weight),), len(kept), dtype=torch.long)
        old_to_new[kept] = torch.arange(len(kept))
        self.register_buffer("old_to_new", old_to_new)

    @property
    def weight(self) -> Tensor:  # what code reading ``get_input_embeddings().weight`` sees
        return self.embedding.weight

    def forward(self, input_ids: Tensor) -> Tensor:
        return self.embedding(self.old_to_new[input_ids])


def used_ids(data: Any) -> set[int]:
    """Every token id in a tokenized dataset's ``input_ids`` (padding included)."""
    encodings = getattr(data, "encodings", None)
    if not isinstance(encodings, dict) or "input_ids" not in encodings:
        raise ValueError("vocabulary trimming reads token ids: it needs tokenized text "
                         f"(got {type(data).__name__})")
    return set(torch.unique(encodings["input_ids"]).tolist())


def remapped_vocabulary(model: nn.Module, data: Any) -> tuple[nn.Module, dict[str, int]]:
    """A copy of ``model`` whose input embedding keeps only the rows ``data`` uses, still
    reading the original ids (:class:`RemappedEmbedding`); and the counts (rows before and
    after, parameters before and after). For deployment (an ONNX export): the copy is not a
    standard Hugging Face model any more."""
    table = model.get_input_embeddings()
    if not isinstance(table, nn.Embedding):
        raise ValueError(f"vocabulary trimming needs an nn.Embedding input table; "
                         f"{type(model).__name__} has a {type(table).__name__}")
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if output is not None and output.weight.shape[0] == table.weight.shape[0]:
        raise ValueError("this model predicts over its vocabulary (a language-model head): "
                         "trim it with trim_vocabulary, which rewrites the tokenizer too")
    kept = torch.tensor(sorted(i for i in used_ids(data) if i < table.num_embeddings))
    before = sum(p.numel() for p in model.parameters())
    trimmed = copy.deepcopy(model)
    trimmed.set_input_embeddings(RemappedEmbedding(trimmed.get_input_embeddings(), kept))
    after = sum(p.numel() for p in trimmed.parameters())
    return trimmed, {"rows_before": int(table.num_embeddings), "rows_after": len(kept) + 1,
                     "parameters_before": before, "parameters_after": after}
