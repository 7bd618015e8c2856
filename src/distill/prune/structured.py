"""Structured pruning: remove whole neurons and channels, leaving a smaller dense model.

Removing output channel ``c`` of a convolution also removes input channel ``c`` of every layer
that reads it, its BatchNorm entries, and — through residual additions and concatenations —
the matching channels of every other layer coupled to it. Finding those coupled groups for an
arbitrary graph is what Torch-Pruning's dependency graph (DepGraph, Fang et al. 2023) does by
tracing the model; we use it rather than hand-writing the coupling rules for each layer type.
What comes back is the same ``nn.Module`` with smaller weight shapes: it runs, trains and saves
like any other (``distill.save`` records that its shapes differ from the builder's).

Importance of a channel: ``"magnitude"`` (L2 norm of its weights, data-free), ``"activation"``
(mean absolute activation on calibration data), ``"taylor"`` (first-order Taylor estimate of
the loss change, |weight × gradient|, from calibration batches with labels).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from distill.batches import first_batches, forward

Importance = Literal["magnitude", "activation", "taylor"]


def _require_torch_pruning():
    try:
        import torch_pruning
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImportError(
            "structured pruning needs the torch-pruning package: pip install 'distill[prune]'"
        ) from err
    return torch_pruning


def output_layers(model: nn.Module) -> list[nn.Module]:
    """The last Linear/convolution in module order: its outputs are the model's, never pruned."""
    layers = [m for m in model.modules() if isinstance(m, nn.Linear | nn.Conv2d | nn.Conv1d)]
    if not layers:
        raise ValueError("the model has no Linear or convolution layer to prune")
    return layers[-1:]


def prune_structured(
    model: nn.Module,
    example_inputs: Any,
    ratio: float,
    *,
    importance: Importance = "magnitude",
    data: Any = None,
    calibration_batches: int = 4,
    batch_size: int = 128,
    keep: Sequence[nn.Module] | None = None,
    global_ranking: bool = False,
    round_to: int | None = None,
) -> nn.Module:
    """Remove ``ratio`` of the channels/neurons of every prunable layer (in place).

    ``example_inputs`` is one batch of inputs for tracing. ``keep`` lists layers whose outputs
    must stay whole (default: the output layer). ``global_ranking`` ranks channels across
    layers instead of pruning each layer by the same ratio. ``round_to`` keeps widths multiples
    of it (SIMD-friendly). ``data`` (with labels, for ``"taylor"``) feeds the data-driven
    importances ``calibration_batches`` batches.
    """
    tp = _require_torch_pruning()
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"ratio must be within (0, 1), got {ratio}")
    if importance not in ("magnitude", "activation", "taylor"):
        raise ValueError(
            f"importance must be 'magnitude', 'activation' or 'taylor', got {importance!r}"
        )
    if importance != "magnitude" and data is None:
        raise ValueError(f"importance={importance!r} needs calibration data (data=...)")
    scorer = {
        "magnitude": lambda: tp.importance.GroupMagnitudeImportance(p=2),
        "activation": lambda: tp.importance.ActivationImportance(p=2),
        "taylor": lambda: tp.importance.GroupTaylorImportance(),
    }[importance]()
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    pruner = tp.pruner.MetaPruner(
        model, example_inputs, importance=scorer, pruning_ratio=ratio,
        ignored_layers=list(keep) if keep is not None else output_layers(model),
        global_pruning=global_ranking, round_to=round_to,
        forward_fn=lambda m, x: forward(m, x),
    )
    if importance == "activation":
        with scorer.compute_importance(model), torch.no_grad():
            for batch in first_batches(data, calibration_batches, batch_size, device):
                forward(model, batch.inputs)
    elif importance == "taylor":
        model.zero_grad(set_to_none=True)
        for batch in first_batches(data, calibration_batches, batch_size, device):
            if batch.labels is None:
                raise ValueError("importance='taylor' needs labeled calibration data")
            F.cross_entropy(forward(model, batch.inputs), batch.labels).backward()
    pruner.step()
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    spec = getattr(model, "distill_spec", None)
    if spec is not None:
        model.distill_spec = {**spec, "resized": True}
    return model
