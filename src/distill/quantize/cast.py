"""Half precision: the weights cast to float16 or bfloat16, inputs cast on the way in and
outputs back to float32 on the way out, so callers see the same interface.

Half the bytes on disk and in memory. On an x86 CPU without native fp16/bf16 matrix units,
PyTorch's half-precision products are emulated and usually slower than fp32: measure.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}


def _cast_floats(value: Any, dtype: torch.dtype) -> Any:
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.to(dtype)
    if isinstance(value, dict):
        return {k: _cast_floats(v, dtype) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return type(value)(_cast_floats(v, dtype) for v in value)
    return value


def attach_casts(model: nn.Module, dtype_name: str) -> nn.Module:
    """Hooks that cast floating inputs to ``dtype_name`` and floating outputs to float32."""
    dtype = DTYPES[dtype_name]

    def inputs(module, args, kwargs):
        return _cast_floats(args, dtype), _cast_floats(kwargs, dtype)

    def outputs(module, args, output):
        if isinstance(output, torch.Tensor) and output.is_floating_point():
            return output.float()
        logits = getattr(output, "logits", None)  # Hugging Face model outputs
        if isinstance(logits, torch.Tensor):
            output.logits = logits.float()
        return output

    model.register_forward_pre_hook(inputs, with_kwargs=True)
    model.register_forward_hook(outputs)
    return model


def cast(model: nn.Module, dtype: str = "float16") -> nn.Module:
    """A copy of ``model`` in ``dtype`` ("float16" or "bfloat16"); ``model`` is left as it is."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    half = copy.deepcopy(model).to(DTYPES[dtype]).eval()
    half.distill_quantization = {"kind": "cast", "dtype": dtype}
    return attach_casts(half, dtype)
