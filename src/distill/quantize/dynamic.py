"""Post-training dynamic int8: weights stored int8 (one scale per output channel), activations
quantized on the fly per batch. No calibration data; Linear, LSTM and GRU layers.

PyTorch's own kernels (``torch.ao.quantization``, fbgemm on x86) do the work. They are marked
deprecated in favour of torchao, whose int8 kernels are slower than fp32 in eager mode on CPUs
like this one; until that changes, these are the CPU kernels worth having (and ONNX Runtime's
are faster still: :mod:`distill.quantize.onnx`).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable

import torch
from torch import nn

DYNAMIC_TYPES = (nn.Linear, nn.LSTM, nn.GRU)


def quantize_dynamic(model: nn.Module, skip: Iterable[str] = ()) -> nn.Module:
    """An int8 copy of ``model`` (left untouched): every Linear/LSTM/GRU but those in ``skip``."""
    from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig
    from torch.ao.quantization import quantize_dynamic as ao_quantize_dynamic

    skip = set(skip)
    layers = [n for n, m in model.named_modules() if isinstance(m, DYNAMIC_TYPES) and n not in skip]
    if not layers:
        raise ValueError("the model has no Linear, LSTM or GRU layers to quantize dynamically")
    # per-channel scales for Linear weights; the recurrent kernels take per-tensor ones
    spec = {name: per_channel_dynamic_qconfig if isinstance(model.get_submodule(name), nn.Linear)
            else default_dynamic_qconfig for name in layers}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # the deprecation notices
        warnings.simplefilter("ignore", category=DeprecationWarning)
        quantized = ao_quantize_dynamic(copy.deepcopy(model).eval(), spec, dtype=torch.qint8)
    quantized.distill_quantization = {"kind": "dynamic-int8", "layers": layers}
    return quantized
