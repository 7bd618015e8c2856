"""Static int8 (calibrated) and its quantization-aware training, for CNNs and MLPs.

Static: the model is traced (torch.fx), observers record activation ranges on calibration
batches, and every convolution, Linear and activation between them runs in int8 with
per-channel weight scales; only the model's input and output stay float.

Quantization-aware training: the same graph with fake quantization, trained (here: distilled
from the full-precision teacher's soft targets) so that the weights learn to live with int8
rounding, then converted to the same int8 graph.

Built on PyTorch's FX graph-mode quantization (x86 backend), which works on eager CPUs today.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from distill.batches import Batches, first_batches

BACKEND = "x86"


@contextmanager
def _quiet() -> Iterator[None]:
    """torch.ao warns on every call that it is moving to torchao; the kernels still work."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        warnings.simplefilter("ignore", category=DeprecationWarning)
        yield


def example_of(data: Any) -> torch.Tensor:
    batch = next(iter(Batches(data, 2, shuffle=False)))
    if not isinstance(batch.inputs, torch.Tensor):
        raise TypeError("static quantization traces tensor-input models (CNNs, MLPs); export "
                        "transformers with distill.quantize.to_onnx(..., int8=True)")
    return batch.inputs


def _tag(quantized: nn.Module, source: nn.Module, kind: str, example: torch.Tensor) -> nn.Module:
    spec = getattr(source, "distill_spec", None)
    if spec is not None:
        quantized.distill_spec = spec
    quantized.distill_quantization = {"kind": kind, "backend": BACKEND,
                                      "input_shape": list(example.shape[1:])}
    return quantized


def prepare_static(model: nn.Module, example: torch.Tensor) -> nn.Module:
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import prepare_fx

    torch.backends.quantized.engine = BACKEND
    with _quiet():
        return prepare_fx(copy.deepcopy(model).eval(), get_default_qconfig_mapping(BACKEND),
                          (example,))


def convert(prepared: nn.Module) -> nn.Module:
    from torch.ao.quantization.quantize_fx import convert_fx

    with _quiet():
        return convert_fx(prepared.eval())


@torch.no_grad()
def quantize_static(model: nn.Module, calibration: Any, *, batches: int = 8,
                    batch_size: int = 128) -> nn.Module:
    """An int8 copy of ``model`` calibrated on ``batches`` batches of ``calibration`` data."""
    example = example_of(calibration)
    prepared = prepare_static(model, example)
    for batch in first_batches(calibration, batches, batch_size):
        prepared(batch.inputs)
    return _tag(convert(prepared), model, "static-int8", example)


def prepare_static_qat(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """The FX graph with fake quantization (see :func:`distill.quantize.prepare_qat`)."""
    from torch.ao.quantization import get_default_qat_qconfig_mapping
    from torch.ao.quantization.quantize_fx import prepare_qat_fx

    torch.backends.quantized.engine = BACKEND
    with _quiet():
        prepared = prepare_qat_fx(copy.deepcopy(model).train(),
                                  get_default_qat_qconfig_mapping(BACKEND), (example,))
    prepared.distill_qat = {"kind": "static"}
    prepared.distill_qat_example = example
    spec = getattr(model, "distill_spec", None)
    if spec is not None:
        prepared.distill_spec = spec
    return prepared


def convert_static_qat(prepared: nn.Module, source: nn.Module | None = None) -> nn.Module:
    example = getattr(prepared, "distill_qat_example", None)
    if example is None:
        raise ValueError("convert_qat takes a model made by prepare_qat(kind='static')")
    return _tag(convert(prepared), source if source is not None else prepared, "qat-int8",
                example)


def structure_like(skeleton: nn.Module, spec: dict[str, Any]) -> nn.Module:
    """The int8 graph ``spec`` describes, built from the fp32 ``skeleton`` (values to be
    loaded): calibration only sets values, so an uncalibrated conversion has the structure."""
    example = torch.zeros(2, *spec["input_shape"])
    if spec["kind"] == "qat-int8":
        prepared = prepare_static_qat(skeleton, example)
    else:
        prepared = prepare_static(skeleton, example)
        prepared(example)
    return convert(prepared)
