"""How big a model is: parameter count and bytes of its saved weights."""

from __future__ import annotations

import tempfile
from pathlib import Path

import safetensors.torch
from torch import nn


def count_parameters(model: nn.Module) -> int:
    own = getattr(model, "parameter_count", None)  # models that are files (ONNX) count theirs
    if callable(own):
        return int(own())
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) not in seen:  # shared (tied) weights count once
            seen.add(id(p))
            total += p.numel()
    return total


def size_on_disk(model: nn.Module) -> int:
    """Bytes of the file the model ships as: its safetensors file, or, for models that are
    files already (an exported ONNX graph) or hold quantized layers, what they say."""
    own = getattr(model, "bytes_on_disk", None)
    if callable(own):
        return int(own())
    if getattr(model, "distill_quantization", None) is not None:
        from distill.quantize.storage import quantized_tensors

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.safetensors"
            safetensors.torch.save_file(quantized_tensors(model), str(path))
            return path.stat().st_size
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.safetensors"
        safetensors.torch.save_model(model, str(path))
        return path.stat().st_size
