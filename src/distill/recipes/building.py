"""Turning recipe tables into models and training settings."""

from __future__ import annotations

from typing import Any

from torch import nn

from distill.artifacts import load
from distill.recipes.schema import SavedSpec, TrainSpec
from distill.runtime import seed_everything
from distill.students.builders import build


def train_kwargs(spec: TrainSpec) -> dict[str, Any]:
    return dict(
        epochs=spec.epochs, batch_size=spec.batch_size, lr=spec.lr, optimizer=spec.optimizer,
        weight_decay=spec.weight_decay, schedule=spec.schedule, warmup_ratio=spec.warmup_ratio,
        grad_clip=spec.grad_clip, seed=spec.seed, device=spec.device, num_threads=spec.threads,
        augment=spec.augment,
    )


def arch_kwargs(spec) -> dict[str, Any]:
    keep = {"mlp": ("hidden", "dropout"),
            "cnn": ("channels", "convs_per_stage", "head", "hidden", "dropout")}[spec.arch]
    return {k: getattr(spec, k) for k in keep}


def build_model(spec, info, seed: int | None) -> nn.Module:
    """A fresh model from a spec (seeded unless ``seed`` is None), or a saved one."""
    if isinstance(spec, SavedSpec):
        return load(spec.path).train()
    if seed is not None:
        seed_everything(seed)
    return build(
        spec.arch, input_shape=info.input_shape, num_classes=info.num_classes, **arch_kwargs(spec)
    )
