"""Quantization-aware training: a fake-quantized copy of the student learns to live with int8
rounding (typically distilled from the full-precision teacher's soft targets), then converts.

Two kinds, one API (:func:`prepare_qat`, train, :func:`convert_qat`):

* ``"static"`` — CNNs and MLPs traced by torch.fx; every layer runs in int8 after conversion
  (:mod:`distill.quantize.static`).
* ``"dynamic"`` — anything with Linear layers, transformers included (FX cannot trace Hugging
  Face models). Each Linear sees per-channel symmetric int8 weights and per-batch affine
  8-bit inputs, the numerics of dynamic int8, with straight-through gradients; conversion
  gives the :func:`~distill.quantize.quantize_dynamic` model of the trained weights, and
  :func:`without_fake_quant` gives the fp32 weights to export to ONNX Runtime's int8.

The dynamic fake quantization is written here (a few lines over ``torch.fake_quantize_*``)
rather than taken from torch.ao's eager QAT, which needs QuantStub/DeQuantStub edits to the
model, or torchao's, whose converted int8 kernels are slower than fp32 on CPUs like this one.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

QatKind = Literal["static", "dynamic"]


def _fake_quant_weight(weight: Tensor) -> Tensor:
    """Per-output-channel symmetric int8, as fbgemm and ONNX Runtime store it."""
    scale = (weight.detach().abs().amax(dim=1) / 127.5).clamp(min=1e-8).float()
    zero = torch.zeros_like(scale, dtype=torch.int32)
    return torch.fake_quantize_per_channel_affine(weight, scale, zero, 0, -128, 127)


def _fake_quant_input(x: Tensor, levels: int) -> Tensor:
    """Per-tensor affine quantization from this batch's range (what dynamic int8 does)."""
    low = x.detach().amin().clamp(max=0.0)
    high = x.detach().amax().clamp(min=0.0)
    scale = ((high - low) / (levels - 1)).clamp(min=1e-8).float().reshape(1)
    zero = torch.round(-low / scale).to(torch.int32).reshape(1)
    return torch.fake_quantize_per_tensor_affine(x, scale, zero, 0, levels - 1)


class FakeQuantLinear(nn.Linear):
    """A Linear layer that computes with int8-rounded weights and inputs while training.

    ``levels`` is 128 by default: PyTorch's x86 dynamic kernels quantize inputs to 7 bits
    (``reduce_range``), so training against them is the harder (and safe) target; ONNX
    Runtime's 8 bits then round more finely than what was trained for.
    """

    levels: int = 128

    @classmethod
    def wrap(cls, linear: nn.Linear, levels: int = 128) -> FakeQuantLinear:
        fake = cls.__new__(cls)
        fake.__dict__.update(linear.__dict__)  # same parameters, hooks and settings
        fake.levels = levels
        return fake

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(_fake_quant_input(x, self.levels), _fake_quant_weight(self.weight),
                        self.bias)

    def plain(self) -> nn.Linear:
        linear = nn.Linear.__new__(nn.Linear)
        linear.__dict__.update(self.__dict__)
        linear.__dict__.pop("levels", None)
        return linear


def _replace(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def _kind(model: nn.Module, data: Any, kind: QatKind | None) -> QatKind:
    if kind is not None:
        if kind not in ("static", "dynamic"):
            raise ValueError(f"kind must be 'static' or 'dynamic', got {kind!r}")
        return kind
    from distill.hf.io import is_hf_model

    return "dynamic" if data is None or is_hf_model(model) else "static"


def prepare_qat(model: nn.Module, data: Any = None, *, kind: QatKind | None = None,
                skip: Iterable[str] = ()) -> nn.Module:
    """A fake-quantized copy of ``model`` to train (e.g. ``distill.distill(teacher, it, ...)``);
    :func:`convert_qat` then makes the int8 model.

    ``kind`` defaults to ``"static"`` when ``data`` (tensor batches: the example to trace) is
    given and the model is not a Hugging Face one, else ``"dynamic"``; ``skip`` names Linear
    layers the dynamic kind leaves in fp32 (a classifier head, say).
    """
    kind = _kind(model, data, kind)
    if kind == "static":
        if data is None:
            raise ValueError("static quantization-aware training traces the model: pass data")
        from distill.quantize.static import example_of, prepare_static_qat

        return prepare_static_qat(model, example_of(data))
    skip = set(skip)
    prepared = copy.deepcopy(model).train()
    layers = [n for n, m in prepared.named_modules() if type(m) is nn.Linear and n not in skip]
    if not layers:
        raise ValueError("the model has no Linear layers to train for dynamic int8")
    for name in layers:
        _replace(prepared, name, FakeQuantLinear.wrap(prepared.get_submodule(name)))
    prepared.distill_qat = {"kind": "dynamic", "layers": layers}
    return prepared


def without_fake_quant(prepared: nn.Module) -> nn.Module:
    """The fp32 model of a trained dynamic QAT copy (what :func:`~distill.quantize.to_onnx`
    exports and quantizes in ONNX Runtime)."""
    plain = copy.deepcopy(prepared).eval()
    for name, module in list(plain.named_modules()):
        if isinstance(module, FakeQuantLinear):
            _replace(plain, name, module.plain())
    for attribute in ("distill_qat", "distill_qat_example"):
        plain.__dict__.pop(attribute, None)
    return plain


def convert_qat(prepared: nn.Module, source: nn.Module | None = None) -> nn.Module:
    """The int8 model of a trained :func:`prepare_qat` copy."""
    info = getattr(prepared, "distill_qat", None)
    if info is None:
        raise ValueError("convert_qat takes a model made by prepare_qat")
    if info["kind"] == "static":
        from distill.quantize.static import convert_static_qat

        return convert_static_qat(prepared, source)
    from distill.quantize.dynamic import quantize_dynamic

    plain = without_fake_quant(prepared)
    skip = [n for n, m in plain.named_modules()
            if isinstance(m, nn.Linear) and n not in set(info["layers"])]
    quantized = quantize_dynamic(plain, skip=skip, keep_float=())  # QAT chose its layers
    quantized.distill_quantization["trained"] = "qat"
    spec = getattr(source if source is not None else prepared, "distill_spec", None)
    if spec is not None:
        quantized.distill_spec = spec
    return quantized
