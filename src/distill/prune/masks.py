"""Weight masks: unstructured magnitude pruning and N:M semi-structured sparsity.

Masks are attached with ``torch.nn.utils.prune`` (``weight = weight_orig * weight_mask``), so
the pruned weights stay zero while the model is fine-tuned or distilled afterwards; saving a
masked model writes the masked weights as plain tensors (:func:`make_permanent` on a copy).

Zeros alone make no dense CPU kernel faster: unstructured and N:M sparsity shrink a model only
once compressed, and speed it up only on kernels built for them (2:4 on sparse tensor cores).
Structured pruning (:mod:`distill.prune.structured`) removes whole neurons and channels.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn.utils import prune

PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def prunable_layers(model: nn.Module, skip: Iterable[str] = ()) -> list[tuple[str, nn.Module]]:
    """The Linear and convolution layers of ``model`` by name, minus those named in ``skip``."""
    skip = set(skip)
    unknown = skip - {name for name, _ in model.named_modules()}
    if unknown:
        raise ValueError(f"skip names no layer of the model: {sorted(unknown)}")
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, PRUNABLE) and name not in skip]


def _weight(module: nn.Module) -> Tensor:
    """The weight as the model sees it: masked if a mask is attached already."""
    return module.weight.detach()


def _check_fraction(sparsity: float) -> None:
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be within [0, 1), got {sparsity}")


def magnitude_prune(
    model: nn.Module,
    sparsity: float,
    *,
    scope: Literal["global", "layer"] = "global",
    skip: Iterable[str] = (),
) -> nn.Module:
    """Zero the smallest-magnitude weights until ``sparsity`` of them are zero.

    ``scope="global"`` ranks all weights together (layers that matter less lose more);
    ``"layer"`` prunes every layer to the same fraction. The target counts weights already
    zero, so pruning 50% then 70% ends at 70%, not 85%. Biases are left alone.
    """
    _check_fraction(sparsity)
    if scope not in ("global", "layer"):
        raise ValueError(f"scope must be 'global' or 'layer', got {scope!r}")
    layers = prunable_layers(model, skip)
    if not layers:
        raise ValueError("the model has no Linear or convolution layers to prune")
    if scope == "global":
        magnitudes = torch.cat([_weight(m).abs().flatten() for _, m in layers])
        threshold = _kth_smallest(magnitudes, sparsity)
        for _, m in layers:
            _attach(m, _weight(m).abs() > threshold)
    else:
        for _, m in layers:
            magnitude = _weight(m).abs()
            _attach(m, magnitude > _kth_smallest(magnitude.flatten(), sparsity))
    return model


def _kth_smallest(values: Tensor, fraction: float) -> float:
    """The magnitude at or below which ``fraction`` of ``values`` lie (-1 keeps everything)."""
    k = int(round(fraction * values.numel()))
    return float(values.kthvalue(k).values) if k > 0 else -1.0


def nm_prune(model: nn.Module, n: int = 2, m: int = 4, *, skip: Iterable[str] = ()) -> nn.Module:
    """Keep the ``n`` largest of every ``m`` consecutive weights along the input dimension.

    The 2:4 pattern is what sparse tensor cores (NVIDIA Ampere and later) run at up to twice
    the dense speed. Groups run along input features (Linear) or input channels at each kernel
    position (convolutions); layers whose input width is not a multiple of ``m`` are left
    dense and named in the returned model's ``distill_nm_skipped``.
    """
    if not 0 < n < m:
        raise ValueError(f"N:M sparsity needs 0 < n < m, got {n}:{m}")
    skipped = []
    for name, layer in prunable_layers(model, skip):
        weight = _weight(layer)
        fan_in = weight.shape[1]
        if fan_in % m:
            skipped.append(name)
            continue
        # (out, in, *kernel) -> (out, *kernel, in): groups of m along the input channels
        moved = weight.movedim(1, -1)
        groups = moved.abs().reshape(-1, m)
        keep = torch.zeros_like(groups, dtype=torch.bool)
        keep.scatter_(1, groups.topk(n, dim=1).indices, True)
        _attach(layer, keep.reshape(moved.shape).movedim(-1, 1))
    model.distill_nm_skipped = skipped
    return model


def _attach(module: nn.Module, keep: Tensor) -> None:
    """Set ``module``'s mask to ``keep`` (replacing an earlier mask, not multiplying with it)."""
    if prune.is_pruned(module) and hasattr(module, "weight_mask"):
        prune.remove(module, "weight")
    prune.custom_from_mask(module, "weight", keep.to(module.weight.dtype))


def make_permanent(model: nn.Module) -> nn.Module:
    """Fold every mask into its weight (``weight`` becomes a plain parameter again)."""
    for module in model.modules():
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, prune.BasePruningMethod):
                prune.remove(module, hook._tensor_name)
    return model


def permanent_copy(model: nn.Module) -> nn.Module:
    """A copy with masks folded in, leaving ``model`` (and its masks) untouched."""
    if not prune.is_pruned(model):
        return model
    for module in model.modules():
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, prune.BasePruningMethod):
                # the masked weight is recomputed on every forward; after training it is a
                # graph node, which deepcopy refuses: give the copy a detached one
                name = hook._tensor_name
                setattr(module, name, getattr(module, name).detach())
    return make_permanent(copy.deepcopy(model))


@dataclass
class LayerSparsity:
    name: str
    zeros: int
    total: int

    @property
    def sparsity(self) -> float:
        return self.zeros / self.total if self.total else 0.0


def sparsity_report(model: nn.Module) -> list[LayerSparsity]:
    """Zero weights per Linear/convolution layer (masked or not), in model order."""
    return [LayerSparsity(name, int((_weight(m) == 0).sum()), _weight(m).numel())
            for name, m in prunable_layers(model)]


def overall_sparsity(model: nn.Module) -> float:
    rows = sparsity_report(model)
    total = sum(r.total for r in rows)
    return sum(r.zeros for r in rows) / total if total else 0.0
