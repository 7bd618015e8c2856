"""Rebuilding a structurally pruned model: the builder's layers, resized to the saved shapes.

A pruned model's widths no longer match its builder's arguments (and need not be uniform, so
no single width argument could describe them). Loading builds the original architecture and
replaces each layer whose saved weights have other shapes by a layer of those shapes.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn


def _resized(module: nn.Module, shapes: Mapping[str, torch.Size], prefix: str) -> nn.Module:
    weight = shapes.get(prefix + "weight")
    if isinstance(module, nn.Linear) and weight is not None:
        return nn.Linear(weight[1], weight[0], bias=prefix + "bias" in shapes)
    if isinstance(module, nn.Conv1d | nn.Conv2d | nn.Conv3d) and weight is not None:
        if module.groups != 1:
            raise ValueError(f"{prefix[:-1]}: resizing grouped convolutions is not supported")
        return type(module)(weight[1], weight[0], module.kernel_size, module.stride,
                            module.padding, module.dilation, bias=prefix + "bias" in shapes,
                            padding_mode=module.padding_mode)
    if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d | nn.BatchNorm3d):
        features = shapes.get(prefix + "running_mean", weight)
        if features is not None:
            return type(module)(features[0], module.eps, module.momentum, module.affine,
                                module.track_running_stats)
    if isinstance(module, nn.LayerNorm) and weight is not None:
        return nn.LayerNorm(tuple(weight), module.eps, module.elementwise_affine)
    return module


def resize_to(model: nn.Module, shapes: Mapping[str, torch.Size]) -> nn.Module:
    """Replace every layer whose parameters in ``shapes`` differ in size (in place)."""
    own = {k: v.shape for k, v in model.state_dict().items()}
    for name, module in list(model.named_modules()):
        prefix = f"{name}." if name else ""
        if not any(own.get(k) != shapes.get(k) for k in own if k.startswith(prefix)
                   and k[len(prefix):].count(".") == 0 and k in shapes):
            continue
        replacement = _resized(module, shapes, prefix)
        if replacement is module:
            continue
        model.set_submodule(name, replacement)
    return model
