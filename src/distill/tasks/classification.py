"""Classification: one label per sample; accuracy, calibration, agreement with the teacher."""

from __future__ import annotations

from typing import Any

from torch import nn

from distill.evaluate.metrics import classification_metrics
from distill.evaluate.predict import predict
from distill.losses.base import DistillationLoss
from distill.losses.soft_targets import KDLoss
from distill.tasks.base import TASKS, Task

# What worked on Fashion-MNIST (see BENCHMARKS.md): moderate temperature, half hard labels.
DEFAULT_TEMPERATURE = 2.0
DEFAULT_ALPHA = 0.5


class Classification(Task):
    name = "classification"
    headline = "accuracy"

    def evaluate(self, model: nn.Module, data: Any, *, teacher: Any = None, batch_size: int = 512,
                 device: str = "cpu", memo: dict[str, Any] | None = None) -> dict[str, float]:
        student = predict(model, data, batch_size, device)
        if student.labels is not None and student.labels.dim() != 1:
            raise ValueError(
                f"classification needs one label per sample, but the evaluation labels have shape "
                f"{tuple(student.labels.shape)} (one per position): for a language model pass "
                "task='causal-lm'")
        memo = {} if memo is None else memo
        teacher_logits = memo.get("teacher_logits")
        if teacher is not None and teacher_logits is None:
            teacher_logits = predict(teacher, data, batch_size, device).logits
            if not getattr(teacher, "changes_during_training", False):
                memo["teacher_logits"] = teacher_logits  # a fixed teacher is run once
        return classification_metrics(student.logits, student.labels, teacher_logits)

    def default_loss(self, student: nn.Module | None = None,
                     teacher: nn.Module | None = None) -> DistillationLoss:
        return KDLoss(DEFAULT_TEMPERATURE, DEFAULT_ALPHA)


TASKS.register("classification", Classification())
