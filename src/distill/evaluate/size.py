"""How big a model is: parameter count and bytes of its saved weights."""

from __future__ import annotations

import tempfile
from pathlib import Path

import safetensors.torch
from torch import nn


def count_parameters(model: nn.Module) -> int:
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) not in seen:  # shared (tied) weights count once
            seen.add(id(p))
            total += p.numel()
    return total


def size_on_disk(model: nn.Module) -> int:
    """Bytes of the safetensors file the model saves to (what ships)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.safetensors"
        safetensors.torch.save_model(model, str(path))
        return path.stat().st_size
