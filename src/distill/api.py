"""The one-call API: ``distill.distill(teacher, student, data)`` and its hard-label twin."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from distill.data.augment import make_augmentation
from distill.engine.callbacks import Callback
from distill.engine.config import TrainConfig
from distill.engine.loop import fit
from distill.evaluate.size import count_parameters
from distill.losses.base import DistillationLoss
from distill.losses.soft_targets import HardLabelLoss, KDLoss
from distill.teachers.precomputed import PrecomputedTeacher

# What worked on Fashion-MNIST (see BENCHMARKS.md): moderate temperature, half hard labels.
DEFAULT_TEMPERATURE = 2.0
DEFAULT_ALPHA = 0.5


@dataclass
class DistillResult:
    """The trained student, its final metrics, and the per-epoch history."""

    student: nn.Module
    metrics: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)


def _augmentation(augment: str | Callable | None) -> Callable | None:
    return make_augmentation(augment) if isinstance(augment, str) else augment


_CONFIG_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


def _config(arguments: dict[str, Any]) -> TrainConfig:
    """The TrainConfig named by a public function's keyword arguments (its ``locals()``)."""
    settings = {k: v for k, v in arguments.items() if k in _CONFIG_FIELDS}
    settings["augment"] = _augmentation(settings.get("augment"))
    return TrainConfig(**settings)


def _result(model: nn.Module, fitted, config: TrainConfig) -> DistillResult:
    metrics: dict[str, Any] = {}
    if fitted.history:
        last = fitted.history[-1]
        metrics.update({k[len("eval_"):]: v for k, v in last.items() if k.startswith("eval_")})
    metrics.update(
        params=count_parameters(model),
        epochs=config.epochs,
        train_seconds=fitted.seconds,
        train_samples_per_s=fitted.samples / max(fitted.seconds, 1e-9),
    )
    return DistillResult(model, metrics, fitted.history)


def distill(
    teacher: Any,
    student: nn.Module,
    train: Any,
    *,
    eval: Any = None,  # noqa: A002 - the name users expect
    loss: DistillationLoss | None = None,
    epochs: int = 1,
    batch_size: int = 128,
    lr: float = 3e-3,
    optimizer: str = "adamw",
    weight_decay: float = 5e-4,
    schedule: str = "cosine",
    warmup_ratio: float = 0.1,
    grad_clip: float | None = None,
    accumulate: int = 1,
    precision: str = "fp32",
    augment: str | Callable | None = None,
    seed: int = 0,
    device: str = "cpu",
    num_threads: int | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    distributed: str = "ddp",
    callbacks: Sequence[Callback] = (),
    progress: bool | None = None,
    precompute_teacher: bool = False,
    on_policy: Any = None,
) -> DistillResult:
    """Train ``student`` to imitate ``teacher`` on ``train``; return the student and its metrics.

    ``teacher`` is any ``nn.Module`` (or teacher signal); it runs in eval mode without gradients
    and is never saved with the student. ``train``/``eval`` are map-style datasets or DataLoaders
    yielding ``(x, y)``, ``x`` alone, or dicts. Samples labeled -100 (or datasets without labels)
    learn from the teacher alone. ``augment`` ("flip-shift" or a callable on input batches) is
    applied once per batch, so the teacher labels exactly the view the student sees.
    ``loss`` defaults to ``KDLoss(temperature=2.0, alpha=0.5)``. The same ``seed`` gives the
    same numbers; seed before building the student to make its initialisation reproducible too.
    ``precompute_teacher=True`` runs the teacher once over ``train`` and reuses its outputs every
    epoch: much cheaper, and exact when there is no augmentation (it refuses ``augment``).
    ``on_policy`` (a :class:`distill.lm.OnPolicy`) replaces a fraction of batches by the
    student's own continuations, scored by the live teacher (language models).
    ``accumulate=k`` steps the optimizer every k batches (an effective batch of k ×
    ``batch_size`` in the memory of one); ``grad_clip`` bounds the gradient norm;
    ``precision="bf16"`` runs the forward passes under bfloat16 autocast (``"auto"``: on GPUs
    that support it). With ``checkpoint_dir``, every epoch leaves a complete checkpoint
    (weights, optimizer, schedule, random states); ``resume=True`` continues from it, to the
    same result as a run that was never interrupted. Under ``torchrun`` the processes train
    together: ``distributed="ddp"`` replicates the student, ``"fsdp"`` shards its parameters,
    gradients and optimizer states among them (FSDP2's ``fully_shard``).
    """
    if teacher is None:
        raise ValueError("distill() needs a teacher; use distill.train_model() without one")
    config = _config(locals())
    if precompute_teacher:
        if config.augment is not None:
            raise ValueError(
                "precompute_teacher=True reuses one teacher output per sample, which cannot "
                "follow augmented views; drop augment= or keep the teacher online"
            )
        if isinstance(teacher, nn.Module):
            teacher = PrecomputedTeacher.from_module(teacher, train, device=device,
                                                     progress=progress)
    loss = loss if loss is not None else KDLoss(DEFAULT_TEMPERATURE, DEFAULT_ALPHA)
    fitted = fit(
        student, train, loss=loss, teacher=teacher, eval_data=eval, config=config,
        callbacks=callbacks, checkpoint_dir=checkpoint_dir, description="distill",
    )
    return _result(student, fitted, config)


def train_model(
    model: nn.Module,
    train: Any,
    *,
    eval: Any = None,  # noqa: A002
    loss: DistillationLoss | None = None,
    epochs: int = 1,
    batch_size: int = 128,
    lr: float = 3e-3,
    optimizer: str = "adamw",
    weight_decay: float = 5e-4,
    schedule: str = "cosine",
    warmup_ratio: float = 0.1,
    grad_clip: float | None = None,
    accumulate: int = 1,
    precision: str = "fp32",
    augment: str | Callable | None = None,
    seed: int = 0,
    device: str = "cpu",
    num_threads: int | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    distributed: str = "ddp",
    callbacks: Sequence[Callback] = (),
    progress: bool | None = None,
    description: str = "train",
) -> DistillResult:
    """Train on hard labels alone, through the same loop: for teachers and baselines."""
    config = _config(locals())
    fitted = fit(
        model, train, loss=loss or HardLabelLoss(), teacher=None, eval_data=eval, config=config,
        callbacks=callbacks, checkpoint_dir=checkpoint_dir, description=description,
    )
    return _result(model, fitted, config)
