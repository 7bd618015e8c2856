"""Hinton et al. (2015) soft-target distillation, and the hard-label loss it is compared with."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from distill.losses.base import (
    DistillationLoss,
    check_labels,
    check_logits,
    masked_cross_entropy,
    masked_mean,
)
from distill.losses.topk import topk_soft_target_kl
from distill.teachers.targets import TopKTargets


def soft_target_kl(
    student_logits: Tensor,
    teacher_logits: Tensor | TopKTargets,
    temperature: float,
    mask: Tensor | None = None,
) -> Tensor:
    """Mean over positions of KL(softmax(teacher/T) || softmax(student/T)), computed in float32.

    Sparse :class:`TopKTargets` are used as they are, never expanded to the full vocabulary.
    """
    if isinstance(teacher_logits, TopKTargets):
        return topk_soft_target_kl(student_logits, teacher_logits, temperature, mask)
    classes = student_logits.shape[-1]
    s = F.log_softmax(student_logits.reshape(-1, classes).float() / temperature, dim=-1)
    teacher_logits = teacher_logits.detach()  # targets: never backpropagate into the teacher
    t = F.log_softmax(teacher_logits.reshape(-1, classes).float() / temperature, dim=-1)
    per_position = (t.exp() * (t - s)).sum(dim=-1)
    return masked_mean(per_position, mask)


class KDLoss(DistillationLoss):
    """``alpha * T² * KL(teacher_T || student_T) + (1 - alpha) * CE(student, labels)``.

    The T² factor keeps the soft-target gradients on the same scale as the hard-label ones
    whatever the temperature, so ``alpha`` means the same thing at T=2 and T=8.

    * ``labels=None`` (unlabeled transfer data): the soft-target term alone, unweighted.
    * Labels equal to ``ignore_index`` (-100) mean "no hard label here": those positions are left
      out of the cross-entropy, as PyTorch's losses do, but still learn from the teacher.
    * ``mask`` (same shape as labels) drops positions from *both* terms, e.g. padding tokens.
    * ``teacher_logits`` may be sparse :class:`~distill.teachers.targets.TopKTargets` (from a
      top-k cache): the KL is then taken over the teacher's k kept entries and one bucket for
      the rest.
    """

    def __init__(self, temperature: float = 4.0, alpha: float = 0.9, ignore_index: int = -100):
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be within [0, 1], got {alpha}")
        self.temperature = float(temperature)
        self.alpha = float(alpha)
        self.ignore_index = ignore_index

    def soft_term(
        self, student_logits: Tensor, teacher_logits: Tensor | TopKTargets,
        mask: Tensor | None = None,
    ) -> Tensor:
        t = self.temperature
        return soft_target_kl(student_logits, teacher_logits, t, mask) * (t * t)

    def forward(
        self,
        student_logits: Tensor,
        teacher_logits: Tensor | TopKTargets | None,
        labels: Tensor | None = None,
        mask: Tensor | None = None,
    ) -> Tensor:
        if teacher_logits is None:
            raise ValueError("KDLoss needs teacher logits; use HardLabelLoss to train without one")
        check_logits(student_logits, teacher_logits)
        soft = self.soft_term(student_logits, teacher_logits, mask)
        if labels is None:
            return soft
        check_labels(student_logits, labels)
        if mask is not None:
            labels = labels.masked_fill(~mask.bool(), self.ignore_index)
        hard = masked_cross_entropy(student_logits, labels, self.ignore_index)
        return self.alpha * soft + (1.0 - self.alpha) * hard

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, alpha={self.alpha}"


class HardLabelLoss(DistillationLoss):
    """Plain cross-entropy on labels: trains teachers and the hard-label baseline."""

    needs_teacher = False

    def __init__(self, ignore_index: int = -100, label_smoothing: float = 0.0):
        super().__init__()
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(
        self,
        student_logits: Tensor,
        teacher_logits: Tensor | None = None,
        labels: Tensor | None = None,
    ) -> Tensor:
        if labels is None:
            raise ValueError(
                "hard-label training needs labels, but the batch has none; "
                "unlabeled data can only be used with a teacher (KDLoss)"
            )
        check_logits(student_logits, None)
        check_labels(student_logits, labels)
        if self.label_smoothing:
            flat = student_logits.reshape(-1, student_logits.shape[-1]).float()
            return F.cross_entropy(
                flat,
                labels.reshape(-1).long(),
                ignore_index=self.ignore_index,
                label_smoothing=self.label_smoothing,
            )
        return masked_cross_entropy(student_logits, labels, self.ignore_index)
