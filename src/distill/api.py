"""The one-call API: ``distill.distill(teacher, student, data)`` and its hard-label twin."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from distill.engine.callbacks import Callback
from distill.engine.config import TrainConfig, TrainSettings
from distill.engine.loop import fit
from distill.evaluate.size import count_parameters
from distill.losses.base import DistillationLoss
from distill.losses.soft_targets import HardLabelLoss
from distill.tasks import Task, resolve_task
from distill.tasks.classification import DEFAULT_ALPHA, DEFAULT_TEMPERATURE  # noqa: F401
from distill.teachers.precomputed import PrecomputedTeacher


@dataclass
class DistillResult:
    """The trained student, its final metrics, and the per-epoch history."""

    student: nn.Module
    metrics: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)


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
    config: TrainSettings | None = None,
    checkpoint_dir: str | Path | None = None,
    callbacks: Sequence[Callback] = (),
    precompute_teacher: bool = False,
    task: str | Task | None = None,
    **settings: Any,
) -> DistillResult:
    """Train ``student`` to imitate ``teacher`` on ``train``; return the student and its metrics.

    ``teacher`` is any ``nn.Module`` (or teacher signal); it runs in eval mode without gradients
    and is never saved with the student. ``train``/``eval`` are map-style datasets or DataLoaders
    yielding ``(x, y)``, ``x`` alone, or dicts. Samples labeled -100 (or datasets without labels)
    learn from the teacher alone. ``augment`` ("flip-shift" or a callable on input batches) is
    applied once per batch, so the teacher labels exactly the view the student sees.
    ``loss`` defaults to the task's: ``KDLoss(temperature=2.0, alpha=0.5)`` for
    classification. ``task`` (``"classification"``, ``"causal-lm"``, ``"sentence-embedding"``)
    says how ``eval`` is scored; by default the one the data declares (distill's language-model
    datasets declare ``"causal-lm"``), else classification. The same ``seed`` gives the
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

    The training settings are :class:`TrainConfig`'s fields (``epochs``, ``batch_size``,
    ``lr``, ``optimizer``, ``weight_decay``, ``schedule``, ``warmup_ratio``, ``grad_clip``,
    ``accumulate``, ``precision``, ``augment``, ``seed``, ``device``, ``num_threads``,
    ``resume``, ``distributed``, ``progress``, ``on_policy``, …): pass them as keywords, or a
    ``config`` (a :class:`TrainConfig`, or a recipe's ``[train]`` table) that keywords override.
    An unknown name is a TypeError with a "did you mean"; a bad value names the setting.
    """
    if teacher is None:
        raise ValueError("distill() needs a teacher; use distill.train_model() without one")
    config = TrainConfig.from_settings(config, **settings)
    task = resolve_task(task, train, eval)
    if loss is None:
        loss = task.default_loss(student, teacher if isinstance(teacher, nn.Module) else None)
    if precompute_teacher:
        if config.augment is not None:
            raise ValueError(
                "precompute_teacher=True reuses one teacher output per sample, which cannot "
                "follow augmented views; drop augment= or keep the teacher online"
            )
        if isinstance(teacher, nn.Module):
            teacher = PrecomputedTeacher.from_module(teacher, train, device=config.device,
                                                     progress=config.progress)
    fitted = fit(
        student, _at_cached_length(teacher, train), loss=loss, teacher=teacher, eval_data=eval,
        config=config, callbacks=callbacks, checkpoint_dir=checkpoint_dir,
        description="distill", task=task,
    )
    return _result(student, fitted, config)


def _at_cached_length(teacher: Any, train: Any) -> Any:
    """Text whose batches would be cut to their longest row, read at its stored length when
    the teacher's outputs come from a cache with a row per position: the cache holds them at
    that length, and a cut batch no longer lines up with them (prompt/completion corpora)."""
    from distill.hf.text import at_stored_length
    from distill.teachers.cached import CachedTeacher

    per_position = isinstance(teacher, CachedTeacher) and teacher.manifest.get("row_shape")
    return at_stored_length(train) if per_position else train


def train_model(
    model: nn.Module,
    train: Any,
    *,
    eval: Any = None,  # noqa: A002
    loss: DistillationLoss | None = None,
    config: TrainSettings | None = None,
    checkpoint_dir: str | Path | None = None,
    callbacks: Sequence[Callback] = (),
    description: str = "train",
    task: str | Task | None = None,
    **settings: Any,
) -> DistillResult:
    """Train on hard labels alone, through the same loop: for teachers and baselines.

    Settings as in :func:`distill`: keywords, or a ``config`` that keywords override.
    """
    config = TrainConfig.from_settings(config, **settings)
    fitted = fit(
        model, train, loss=loss or HardLabelLoss(), teacher=None, eval_data=eval, config=config,
        callbacks=callbacks, checkpoint_dir=checkpoint_dir, description=description, task=task,
    )
    return _result(model, fitted, config)
