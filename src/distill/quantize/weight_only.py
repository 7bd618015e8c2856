"""Weight-only int8 and int4 Linear layers: integer weights with one scale per group.

Activations stay in floating point and each weight is dequantized just before its matrix
product, so what this buys on a CPU is memory (4× smaller at int8, ~7× at int4 with group
scales) — the product itself is the fp32 one, plus the dequantization, so it is not faster
here; fast int4/int8 weight-only kernels exist for GPUs and some ARM CPUs, not in eager
PyTorch on x86. Everything is plain tensors, so safetensors stores it as it is.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class WeightOnlyLinear(nn.Module):
    """``y = x @ dequantize(W).T + b`` with ``W`` stored in ``bits`` (8 or 4) per weight.

    Symmetric quantization per group of ``group_size`` consecutive input features:
    ``W ≈ q * scale`` with ``q`` in ``[-(2^(bits-1) - 1), 2^(bits-1) - 1]``; int4 values are
    packed two per byte.
    """

    def __init__(self, in_features: int, out_features: int, bits: int = 8,
                 group_size: int = 128, bias: bool = True):
        super().__init__()
        if bits not in (4, 8):
            raise ValueError(f"weight-only quantization supports 8 or 4 bits, got {bits}")
        if group_size < 1:
            raise ValueError(f"group_size must be >= 1, got {group_size}")
        self.in_features, self.out_features = in_features, out_features
        self.bits, self.group_size = bits, min(group_size, in_features)
        groups = -(-in_features // self.group_size)
        width = self.padded_in // 2 if bits == 4 else self.padded_in
        dtype = torch.uint8 if bits == 4 else torch.int8
        self.register_buffer("qweight", torch.zeros(out_features, width, dtype=dtype))
        self.register_buffer("scales", torch.ones(out_features, groups))
        self.register_buffer("bias", torch.zeros(out_features) if bias else None)

    @property
    def padded_in(self) -> int:
        groups = -(-self.in_features // self.group_size)
        return groups * self.group_size + (groups * self.group_size) % 2

    @classmethod
    def from_linear(cls, linear: nn.Linear, bits: int = 8, group_size: int = 128
                    ) -> WeightOnlyLinear:
        out = cls(linear.in_features, linear.out_features, bits, group_size,
                  linear.bias is not None)
        weight = linear.weight.detach().float()
        pad = out.padded_in - linear.in_features
        weight = F.pad(weight, (0, pad))
        groups = out.scales.shape[1]
        limit = 2 ** (bits - 1) - 1
        grouped = weight[:, : groups * out.group_size].reshape(out.out_features, groups, -1)
        scales = grouped.abs().amax(-1).clamp(min=1e-12) / limit
        q = (grouped / scales.unsqueeze(-1)).round().clamp(-limit, limit).reshape(
            out.out_features, -1)
        q = F.pad(q, (0, out.padded_in - q.shape[1]))
        if bits == 4:  # two values per byte, offset to 0..15
            nibbles = (q + 8).to(torch.uint8)
            out.qweight.copy_(nibbles[:, 0::2] | (nibbles[:, 1::2] << 4))
        else:
            out.qweight.copy_(q.to(torch.int8))
        out.scales.copy_(scales)
        if linear.bias is not None:
            out.bias.copy_(linear.bias.detach())
        return out

    def dequantize(self) -> Tensor:
        if self.bits == 4:
            low = (self.qweight & 0x0F).to(torch.int8) - 8
            high = (self.qweight >> 4).to(torch.int8) - 8
            q = torch.stack([low, high], dim=-1).flatten(1)
        else:
            q = self.qweight
        groups = self.scales.shape[1]
        q = q[:, : groups * self.group_size].reshape(self.out_features, groups, -1)
        weight = (q.float() * self.scales.unsqueeze(-1)).reshape(self.out_features, -1)
        return weight[:, : self.in_features]

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.dequantize().to(x.dtype), self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bits={self.bits}, group_size={self.group_size}")


def quantize_weights(model: nn.Module, bits: int = 8, group_size: int = 128,
                     skip: Iterable[str] = ()) -> nn.Module:
    """A copy of ``model`` whose Linear layers (but those in ``skip``) hold ``bits``-bit
    weights (:class:`WeightOnlyLinear`); ``model`` is left as it is."""
    skip = set(skip)
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and n not in skip]
    if not names:
        raise ValueError("the model has no Linear layers to quantize")
    quantized = copy.deepcopy(model).eval()
    for name in names:
        quantized.set_submodule(name, WeightOnlyLinear.from_linear(quantized.get_submodule(name),
                                                               bits, group_size))
    quantized.distill_quantization = {"kind": "weight-only", "bits": bits,
                                      "group_size": group_size, "layers": names}
    return quantized


def weight_only_shells(model: nn.Module, layers: Iterable[str], bits: int,
                       group_size: int) -> None:
    """Empty :class:`WeightOnlyLinear` layers in place of ``layers``, for loading saved ones."""
    for name in layers:
        linear = model.get_submodule(name)
        if not isinstance(linear, nn.Linear):
            raise ValueError(f"{name} is a {type(linear).__name__}, not a Linear layer")
        model.set_submodule(name, WeightOnlyLinear(linear.in_features, linear.out_features, bits,
                                               group_size, linear.bias is not None))
