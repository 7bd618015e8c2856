"""A recipe whose student is its teacher, pruned: prune, recover by distillation, and compare
with recovery by fine-tuning on hard labels at equal steps (the baseline)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from distill.losses import DistillationLoss
from distill.prune.recover import PruneResult, prune_and_recover
from distill.recipes.building import train_kwargs
from distill.recipes.schema import Recipe

log = logging.getLogger("distill")


def _pruned(recipe: Recipe, teacher, train, test, recover: str, spec, loss, progress,
            checkpoints: Path | None) -> PruneResult:
    student = recipe.student
    settings = train_kwargs(spec)
    epochs = settings.pop("epochs")
    example = None
    if not hasattr(teacher, "config"):  # a plain module is traced with a batch of zeros
        example = torch.zeros(2, *train.info.input_shape)
    extra: dict[str, Any] = {"loss": loss, "checkpoint_dir": checkpoints} \
        if recover == "distill" else {"description": "baseline"}
    return prune_and_recover(
        teacher, train, ratio=student.ratio, method=student.method, steps=student.steps,
        recover=recover, example_inputs=example, importance=student.importance,
        epochs_per_step=max(1, epochs // student.steps), eval=test, progress=progress,
        **settings, **extra,
    )


def run_pruned(recipe: Recipe, setup, train, test, loss: DistillationLoss, checkpoints: Path,
               progress) -> tuple[Any, Any, Any, dict[str, Any]]:
    """(student, its result, the fine-tuned baseline or None, the training histories)."""
    spec = recipe.student
    log.info("student: the teacher pruned (%s, ratio %g, %d step(s)), recovered by distillation",
             spec.method, spec.ratio, spec.steps)
    distilled = _pruned(recipe, setup.module, train, test, "distill", recipe.train, loss,
                        progress, checkpoints)
    histories = {"teacher": setup.history, "student": distilled.history}
    baseline = None
    if recipe.baseline.enabled:
        log.info("baseline: the same pruning, recovered by fine-tuning on hard labels")
        fitted = _pruned(recipe, setup.module, train.labeled(), test, "finetune",
                         recipe.baseline.train or recipe.train, loss, progress, None)
        baseline, histories["baseline"] = fitted.model, fitted.history
    return distilled.model, distilled, baseline, histories
