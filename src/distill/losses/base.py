"""The contract every distillation loss follows, so the engine can train with any of them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from distill.batches import forward


class DistillationLoss(nn.Module):
    """A loss over student outputs, teacher outputs and (optional) hard labels.

    Subclasses implement ``forward(student_logits, teacher_logits, labels=None)`` and return a
    scalar. ``needs_teacher`` tells the engine whether a teacher signal must be computed at all,
    so hard-label baselines train through the very same loop without paying for a teacher.
    """

    needs_teacher: bool = True

    def outputs(self, model: nn.Module, inputs: Tensor | Mapping[str, Any]) -> Any:
        """What this loss reads from a model (the student, and a live teacher): its logits here;
        a loss may read something cheaper to hold (e.g. hidden states it turns into logits in
        chunks)."""
        return forward(model, inputs)

    def check_models(self, student: nn.Module, teacher: nn.Module | None) -> None:
        """Refuse a student/teacher pair this loss cannot compare, before any training."""

    def release(self) -> None:
        """Detach what the loss attached to the models (e.g. forward hooks); a no-op here."""

    def forward(  # pragma: no cover - interface
        self, student_logits: Tensor, teacher_logits: Tensor | None, labels: Tensor | None = None
    ) -> Tensor:
        raise NotImplementedError


def check_logits(student_logits: Tensor, teacher_logits: Any) -> None:
    """Refuse mismatched outputs with a message a user can act on."""
    if student_logits.dim() < 2:
        raise ValueError(
            f"student logits must have a class dimension, got shape {tuple(student_logits.shape)}"
        )
    if teacher_logits is None:
        return
    if teacher_logits.shape != student_logits.shape:
        s, t = tuple(student_logits.shape), tuple(teacher_logits.shape)
        hint = ""
        if s[:-1] == t[:-1]:
            hint = (
                f": the teacher predicts {t[-1]} classes and the student {s[-1]}; "
                "build the student with the teacher's number of outputs"
            )
        elif len(s) == len(t) == 3 and s[0] == t[0] and s[2] == t[2]:
            hint = (
                ": the sequence lengths differ; per-token teacher outputs cached at full length "
                "need untrimmed batches (TokenizedText(..., trim_padding=False))"
            )
        raise ValueError(f"teacher output shape {t} differs from student output shape {s}{hint}")


def check_labels(logits: Tensor, labels: Tensor) -> None:
    if labels.shape != logits.shape[:-1]:
        raise ValueError(
            f"labels of shape {tuple(labels.shape)} do not match logits of shape "
            f"{tuple(logits.shape)} (expected labels of shape {tuple(logits.shape[:-1])})"
        )
    if labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8, torch.int8):
        raise ValueError(f"labels must be integer class indices, got dtype {labels.dtype}")


def masked_cross_entropy(logits: Tensor, labels: Tensor, ignore_index: int = -100) -> Tensor:
    """Cross-entropy over labeled positions; zero (not NaN) when a batch has no labels at all.

    Mixed labeled/unlabeled transfer sets mark unlabeled samples with ``ignore_index``, so a batch
    made only of unlabeled samples is normal, not an error.
    """
    flat_logits = logits.reshape(-1, logits.shape[-1]).float()
    flat_labels = labels.reshape(-1).long()
    valid = flat_labels != ignore_index
    if not bool(valid.any()):
        return flat_logits.sum() * 0.0
    num_classes = flat_logits.shape[-1]
    bad = valid & ((flat_labels < 0) | (flat_labels >= num_classes))
    if bool(bad.any()):
        value = int(flat_labels[bad][0])
        raise ValueError(
            f"label {value} is out of range for {num_classes} classes "
            f"(labels must be in [0, {num_classes - 1}] or {ignore_index} for 'no label')"
        )
    return nn.functional.cross_entropy(flat_logits, flat_labels, ignore_index=ignore_index)


def masked_mean(per_position: Tensor, mask: Tensor | None) -> Tensor:
    """Mean over the positions ``mask`` keeps (all without a mask); zero, not NaN, if none."""
    if mask is None:
        return per_position.mean()
    keep = mask.reshape(-1).bool()
    if not bool(keep.any()):
        return per_position.sum() * 0.0
    return per_position[keep].mean()
