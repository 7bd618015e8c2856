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


# Causal LMs of the llama family: the MLP's down projection reads activations with outliers
# that one int8 scale per tensor cannot hold, and the output head's rows are many. SmolLM2-135M's
# held-out perplexity: 75.95 in float32, 371.3 with every Linear int8, 86.46 with these two
# kept in float32 (BENCHMARKS.md, "Generating with SmolLM2-135M on a CPU").
LM_KEEP_FLOAT = ("mlp.down_proj", "lm_head")


def default_keep_float(model: nn.Module) -> tuple[str, ...]:
    """The layers (name endings) dynamic int8 leaves in float32 unless told otherwise."""
    from distill.hf.io import is_hf_model
    from distill.hf.layers import DECODER, FAMILIES

    if is_hf_model(model) and FAMILIES.get(model.config.model_type) is DECODER and hasattr(
            model, "lm_head"):
        return LM_KEEP_FLOAT
    return ()


def quantize_dynamic(model: nn.Module, skip: Iterable[str] = (),
                     keep_float: Iterable[str] | None = None) -> nn.Module:
    """An int8 copy of ``model`` (left untouched): every Linear/LSTM/GRU but those in ``skip``
    and those whose names end with one of ``keep_float`` (None: :func:`default_keep_float`,
    the MLP down projections and output head of a llama-family language model; ``()`` to
    quantize them too)."""
    from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig
    from torch.ao.quantization import quantize_dynamic as ao_quantize_dynamic

    skip = set(skip)
    ends = tuple(default_keep_float(model) if keep_float is None else keep_float)
    layers = [n for n, m in model.named_modules() if isinstance(m, DYNAMIC_TYPES)
              and n not in skip and not (ends and n.endswith(ends))]
    if not layers:
        raise ValueError("the model has no Linear, LSTM or GRU layers to quantize dynamically")
    # per-channel scales for Linear weights; the recurrent kernels take per-tensor ones
    spec = {name: per_channel_dynamic_qconfig if isinstance(model.get_submodule(name), nn.Linear)
            else default_dynamic_qconfig for name in layers}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # the deprecation notices
        warnings.simplefilter("ignore", category=DeprecationWarning)
        quantized = ao_quantize_dynamic(copy.deepcopy(model).eval(), spec, dtype=torch.qint8)
    quantized.distill_quantization = {"kind": "dynamic-int8", "layers": layers,
                                      **({"kept_float": list(ends)} if ends else {})}
    return quantized
