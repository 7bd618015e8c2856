"""Is a model's accuracy clearly above chance? If not, every ratio built on it means nothing.

A teacher that scores 10% on ten classes (trained on pixels in [0, 1], evaluated on
standardised ones) makes "retention 99.90%" out of two coin tosses. Chance here is what always
answering the most frequent test class scores (10% on balanced classes, 95% when one class is
95% of the test set), not 1 / number of classes.

A model is *near chance* when the lower end of its accuracy's 95% Wilson interval does not
clear chance by at least ``MIN_SKILL`` of the room above it::

    lower bound <= chance + MIN_SKILL * (1 - chance)

that is, its skill score (accuracy - chance) / (1 - chance), Cohen's kappa against the
majority answer, is not surely above 0.05. A relative margin, not an absolute one: with 95% of
the test set in one class, "chance + 5 points" would be 100% and flag every model; with ten
balanced classes it is 14.5%, with two 52.5%.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from distill.evaluate.uncertainty import accuracy_interval

MIN_SKILL = 0.05


@dataclass(frozen=True)
class ChanceCheck:
    """A model's accuracy beside chance on the same labelled samples."""

    accuracy: float
    ci95: tuple[float, float]
    chance: float
    samples: int

    @property
    def threshold(self) -> float:
        return self.chance + MIN_SKILL * (1 - self.chance)

    @property
    def near_chance(self) -> bool:
        return self.ci95[0] <= self.threshold


def chance_accuracy(labels: Tensor) -> float | None:
    """The accuracy of always answering the most frequent class (negative labels: unlabelled,
    left out); None without labelled samples."""
    labels = labels[labels >= 0]
    if labels.numel() == 0:
        return None
    return float(torch.bincount(labels.long()).max()) / labels.numel()


def check_chance(logits: Tensor, labels: Tensor | None) -> ChanceCheck | None:
    """The check for one classifier's outputs; None when it does not apply (no labels, or not
    one class per sample: sequences, embeddings)."""
    if labels is None or labels.dim() != 1 or logits.dim() != 2 or len(labels) != len(logits):
        return None
    keep = labels >= 0
    chance = chance_accuracy(labels)
    if chance is None:
        return None
    right = int((logits[keep].argmax(-1) == labels[keep]).sum())
    samples = int(keep.sum())
    return ChanceCheck(right / samples, accuracy_interval(right, samples), chance, samples)


def near_chance_warning(check: ChanceCheck, who: str = "the teacher",
                        consequence: str = "retention, gap closed and every comparison with "
                        "the teacher mean nothing") -> str:
    """The warning, with the numbers and the usual causes."""
    lo, hi = check.ci95
    return (f"{who[:1].upper() + who[1:]} scores {100 * check.accuracy:.2f}% (95% interval "
            f"{100 * lo:.2f}–{100 * hi:.2f}%, {check.samples} samples) on the evaluation data, "
            f"where always answering the most frequent class scores {100 * check.chance:.2f}%: "
            f"it is not clearly above chance, so {consequence}. Usual causes: the data is "
            f"preprocessed differently from how {who} was trained (e.g. pixels in [0, 1] for "
            "training, standardised here, or another image size or channel order); the labels "
            "are in another order than its classes (a different class mapping); or it was "
            "trained on other classes.")
