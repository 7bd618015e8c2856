"""Quality metrics computed from logits: accuracy, calibration, and closeness to the teacher."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

IGNORE = -100


def _labeled(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    logits = logits.reshape(-1, logits.shape[-1])
    labels = labels.reshape(-1)
    keep = labels != IGNORE
    return logits[keep], labels[keep]


def accuracy(logits: Tensor, labels: Tensor) -> float:
    logits, labels = _labeled(logits, labels)
    if len(labels) == 0:
        return float("nan")
    return float((logits.argmax(-1) == labels).float().mean())


def negative_log_likelihood(logits: Tensor, labels: Tensor) -> float:
    logits, labels = _labeled(logits, labels)
    return float(F.cross_entropy(logits.float(), labels.long())) if len(labels) else float("nan")


def expected_calibration_error(logits: Tensor, labels: Tensor, bins: int = 15) -> float:
    """|accuracy - confidence| averaged over equal-width confidence bins, weighted by bin size."""
    logits, labels = _labeled(logits, labels)
    if len(labels) == 0:
        return float("nan")
    confidence, predicted = F.softmax(logits.float(), dim=-1).max(dim=-1)
    correct = (predicted == labels).float()
    edges = torch.linspace(0, 1, bins + 1)
    ece = torch.zeros(())
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (confidence > lo) & (confidence <= hi)
        if in_bin.any():
            gap = (correct[in_bin].mean() - confidence[in_bin].mean()).abs()
            ece += gap * in_bin.float().mean()
    return float(ece)


def agreement(student_logits: Tensor, teacher_logits: Tensor) -> float:
    """How often the student's top-1 prediction is the teacher's."""
    s = student_logits.reshape(-1, student_logits.shape[-1]).argmax(-1)
    t = teacher_logits.reshape(-1, teacher_logits.shape[-1]).argmax(-1)
    return float((s == t).float().mean())


def kl_to_teacher(student_logits: Tensor, teacher_logits: Tensor) -> float:
    """Mean KL(teacher || student) in nats, at temperature 1."""
    classes = student_logits.shape[-1]
    s = F.log_softmax(student_logits.reshape(-1, classes).float(), dim=-1)
    t = F.log_softmax(teacher_logits.reshape(-1, classes).float(), dim=-1)
    return float((t.exp() * (t - s)).sum(-1).mean())


def classification_metrics(
    logits: Tensor, labels: Tensor | None, teacher_logits: Tensor | None = None
) -> dict[str, float]:
    out: dict[str, float] = {}
    if labels is not None:
        out["accuracy"] = accuracy(logits, labels)
        out["nll"] = negative_log_likelihood(logits, labels)
        out["ece"] = expected_calibration_error(logits, labels)
    if teacher_logits is not None:
        if teacher_logits.shape != logits.shape:
            raise ValueError(
                f"teacher logits {tuple(teacher_logits.shape)} and student logits "
                f"{tuple(logits.shape)} differ in shape"
            )
        out["agreement"] = agreement(logits, teacher_logits)
        out["kl_to_teacher"] = kl_to_teacher(logits, teacher_logits)
    return out
