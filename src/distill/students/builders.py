"""Small image classifiers with width and depth knobs, rebuildable from a JSON spec.

Every model built here carries ``distill_spec`` (architecture name + keyword arguments), which
is what :func:`distill.save` writes next to the weights so :func:`distill.load` can rebuild it
without pickle.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from distill.registry import Registry

ARCHITECTURES: Registry[Callable[..., nn.Module]] = Registry("architecture")


def register_architecture(name: str):
    """Make a model factory loadable by name from a saved config (a later registration of the
    same name replaces the earlier one)."""

    def wrap(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        ARCHITECTURES.register(name, factory, replace=True)
        return factory

    return wrap


def _tag(model: nn.Module, name: str, kwargs: dict[str, Any]) -> nn.Module:
    model.distill_spec = {"architecture": name, "kwargs": kwargs}
    return model


@register_architecture("mlp")
def build_mlp(
    input_shape: Sequence[int],
    num_classes: int,
    hidden: Sequence[int] = (256,),
    dropout: float = 0.0,
) -> nn.Module:
    """Flatten, then ``len(hidden)`` Linear+ReLU layers of the given widths, then the classifier."""
    input_shape, hidden = [int(d) for d in input_shape], [int(h) for h in hidden]
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(input_shape)
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, num_classes))
    kwargs = dict(input_shape=input_shape, num_classes=num_classes, hidden=hidden, dropout=dropout)
    return _tag(nn.Sequential(*layers), "mlp", kwargs)


@register_architecture("cnn")
def build_cnn(
    input_shape: Sequence[int],
    num_classes: int,
    channels: Sequence[int] = (32, 64),
    convs_per_stage: int = 1,
    head: str = "gap",
    hidden: int = 0,
    dropout: float = 0.0,
) -> nn.Module:
    """Stages of ``convs_per_stage`` 3x3 Conv+BatchNorm+ReLU, each stage's width from ``channels``.

    Stages are separated by 2x2 max-pooling. ``head="gap"`` averages the last feature map (few
    parameters); ``head="flatten"`` pools once more and flattens it (many parameters, few FLOPs).
    ``hidden`` adds a fully connected layer of that width before the classifier.
    """
    if head not in ("gap", "flatten"):
        raise ValueError(f"head must be 'gap' or 'flatten', got {head!r}")
    if len(input_shape) != 3:
        raise ValueError(f"a CNN needs input_shape (C, H, W), got {tuple(input_shape)}")
    input_shape, channels = [int(d) for d in input_shape], [int(c) for c in channels]
    in_ch, height, width = input_shape
    layers: list[nn.Module] = []
    for stage, out_ch in enumerate(channels):
        for _ in range(convs_per_stage):
            layers += [
                nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
                nn.BatchNorm2d(out_ch),
                nn.ReLU(),
            ]
            in_ch = out_ch
        if stage < len(channels) - 1 or head == "flatten":
            layers.append(nn.MaxPool2d(2))
            height, width = height // 2, width // 2
    if head == "gap":
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        features = in_ch
    else:
        layers.append(nn.Flatten())
        features = in_ch * height * width
    if hidden:
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers += [nn.Linear(features, hidden), nn.ReLU()]
        features = hidden
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(features, num_classes))
    kwargs = dict(
        input_shape=input_shape,
        num_classes=num_classes,
        channels=channels,
        convs_per_stage=convs_per_stage,
        head=head,
        hidden=hidden,
        dropout=dropout,
    )
    return _tag(nn.Sequential(*layers), "cnn", kwargs)


def build(architecture: str, **kwargs: Any) -> nn.Module:
    """Build a registered architecture by name (an unknown name: a ValueError with the choices)."""
    return ARCHITECTURES.get(architecture)(**kwargs)
