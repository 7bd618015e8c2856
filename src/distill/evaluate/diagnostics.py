"""Where a student differs from its teacher, class by class: what the report shows and flags.

Hinton et al. and every later distillation paper report one accuracy; the seed material warns
that a student inherits, and can amplify, its teacher's mistakes. So a run also records, on the
test set: per-class accuracy, confusion matrices, reliability bins, the classes whose error grew
by clearly more than the average (beyond two standard errors of the class's own estimate), and
how many of the student's mistakes are the teacher's own, repeated.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

CALIBRATION_BINS = 10


def confusion_matrix(predicted: Tensor, labels: Tensor, classes: int) -> list[list[int]]:
    """Rows: true class; columns: predicted class."""
    counts = torch.bincount(labels * classes + predicted, minlength=classes * classes)
    return counts.reshape(classes, classes).tolist()


def per_class_accuracy(predicted: Tensor, labels: Tensor, classes: int) -> list[float | None]:
    out: list[float | None] = []
    for c in range(classes):
        mask = labels == c
        out.append(float((predicted[mask] == c).double().mean()) if mask.any() else None)
    return out


def reliability(logits: Tensor, labels: Tensor, bins: int = CALIBRATION_BINS) -> dict[str, list]:
    """Mean confidence and accuracy of the predictions in each confidence bin."""
    confidence, predicted = logits.float().softmax(-1).max(-1)
    correct = (predicted == labels).float()
    index = (confidence * bins).long().clamp(max=bins - 1)
    out: dict[str, list] = {"confidence": [], "accuracy": [], "count": []}
    for b in range(bins):
        mask = index == b
        n = int(mask.sum())
        out["count"].append(n)
        out["confidence"].append(float(confidence[mask].mean()) if n else None)
        out["accuracy"].append(float(correct[mask].mean()) if n else None)
    return out


def _flags(teacher_acc: list, student_acc: list, support: list[int]) -> dict[str, Any]:
    """Classes whose error grew by more than the average growth plus two standard errors."""
    growth = [None if t is None or s is None else t - s
              for t, s in zip(teacher_acc, student_acc, strict=True)]
    known = [g for g in growth if g is not None]
    mean = sum(known) / len(known) if known else 0.0
    flagged = []
    for c, (g, s, n) in enumerate(zip(growth, student_acc, support, strict=True)):
        if g is None or n == 0:
            continue
        noise = 2 * math.sqrt(max(s * (1 - s), 1.0 / n) / n)
        if g > mean + noise:
            flagged.append({"class": c, "error_growth": g, "threshold": mean + noise})
    return {"mean_error_growth": mean, "error_growth": growth,
            "flagged": sorted(flagged, key=lambda f: -f["error_growth"])}


def _inherited(teacher_pred: Tensor, student_pred: Tensor, labels: Tensor,
               classes: int) -> dict[str, Any]:
    """How much of the student's wrongness is the teacher's: the same wrong answer."""
    teacher_wrong, student_wrong = teacher_pred != labels, student_pred != labels
    same_way = student_wrong & (student_pred == teacher_pred)
    n_student, n_teacher = int(student_wrong.sum()), int(teacher_wrong.sum())
    per_class = [int((same_way & (labels == c)).sum()) for c in range(classes)]
    return {
        "student_errors": n_student,
        "teacher_errors": n_teacher,
        "same_wrong_answer": int(same_way.sum()),
        "share_of_student_errors": int(same_way.sum()) / n_student if n_student else None,
        "share_of_teacher_errors_repeated": int(same_way.sum()) / n_teacher if n_teacher else None,
        "new_errors": int((student_wrong & ~teacher_wrong).sum()),
        "fixed_errors": int((teacher_wrong & ~student_wrong).sum()),
        "same_wrong_answer_per_class": per_class,
    }


def diagnose(logits: dict[str, Tensor], labels: Tensor, *, reference: str = "teacher",
             compared: str = "student", class_names: tuple[str, ...] = ()) -> dict[str, Any]:
    """Per-class, confusion and calibration numbers of every model, and the flags of
    ``compared`` against ``reference`` (JSON values, for metrics.json)."""
    if reference not in logits or compared not in logits:
        raise ValueError(f"diagnose needs {reference!r} and {compared!r} among {sorted(logits)}")
    classes = int(next(iter(logits.values())).shape[-1])
    keep = labels >= 0
    labels = labels[keep]
    predicted = {name: value[keep].argmax(-1) for name, value in logits.items()}
    support = torch.bincount(labels, minlength=classes).tolist()
    names = list(class_names) if len(class_names) == classes else [str(c) for c in
                                                                    range(classes)]
    per_class = {n: per_class_accuracy(p, labels, classes) for n, p in predicted.items()}
    return {
        "class_names": names,
        "support": support,
        "per_class_accuracy": per_class,
        "confusion": {n: confusion_matrix(p, labels, classes) for n, p in predicted.items()},
        "calibration": {n: reliability(value[keep], labels) for n, value in logits.items()},
        "flags": _flags(per_class[reference], per_class[compared], support),
        "inherited": _inherited(predicted[reference], predicted[compared], labels, classes),
    }
