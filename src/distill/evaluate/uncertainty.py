"""How sure a measured accuracy, or a difference between two, is: so noise is never a finding.

One test set of n images measures an accuracy p only to about sqrt(p(1-p)/n) (0.27 points at
92% on 10,000 images). Two models scored on the *same* images are compared by their paired
difference — what only one of them gets right — which is far more precise than two separate
intervals (McNemar's idea). A difference whose 95% interval contains zero is reported as "no
measurable difference (±x)", never as a gain or a loss; a ratio built on it ("gap closed") is
not reported at all. With several seeds, the spread between seeds is the uncertainty instead
(Welch's interval on the means).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

Z95 = 1.959963984540054  # two-sided 95% of the normal distribution
# two-sided 95% quantiles of Student's t, by degrees of freedom (1..30); beyond: the normal
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def accuracy_interval(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of an accuracy of ``correct`` out of ``n`` (95% by default):
    unlike p ± z·se it stays inside [0, 1] and is honest near 0% and 100%."""
    if n <= 0:
        return (float("nan"), float("nan"))
    p = correct / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def paired_difference(a_correct: Sequence[bool] | np.ndarray,
                      b_correct: Sequence[bool] | np.ndarray, z: float = Z95) -> dict[str, Any]:
    """Accuracy of A minus accuracy of B on the same samples, with its 95% interval.

    The standard error is that of the mean of the per-sample differences (each -1, 0 or +1),
    so it comes only from the samples one model gets right and the other wrong.
    ``measurable`` says whether the interval excludes zero.
    """
    a = np.asarray(a_correct, dtype=bool)
    b = np.asarray(b_correct, dtype=bool)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired_difference needs two equal 1-D arrays, got {a.shape} and "
                         f"{b.shape}")
    n = int(a.size)
    if n == 0:
        raise ValueError("paired_difference needs at least one sample")
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    difference = (only_a - only_b) / n
    variance = max((only_a + only_b) / n - difference**2, 0.0) / n
    half = z * math.sqrt(variance)
    if only_a + only_b == 0:
        half = 0.0
    return {"difference": difference, "ci95": [difference - half, difference + half],
            "half_width": half, "measurable": abs(difference) > half and only_a != only_b,
            "only_first_right": only_a, "only_second_right": only_b, "samples": n,
            "method": "paired (same test samples), normal approximation"}


def t95(degrees: float) -> float:
    if degrees < 1:
        return float("inf")
    if degrees > len(_T95):
        return Z95
    return _T95[int(degrees) - 1]  # rounding down the degrees: a (slightly) wider interval


def seeds_difference(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """Mean of ``a`` minus mean of ``b`` over seeds, with Welch's 95% interval (unequal
    spreads); needs at least two seeds on each side."""
    a_, b_ = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a_) < 2 or len(b_) < 2:
        raise ValueError("an interval over seeds needs at least two seeds on each side")
    va, vb = a_.var(ddof=1) / len(a_), b_.var(ddof=1) / len(b_)
    difference = float(a_.mean() - b_.mean())
    se = math.sqrt(va + vb)
    degrees = (va + vb) ** 2 / (va**2 / (len(a_) - 1) + vb**2 / (len(b_) - 1)) if se else 1e9
    half = t95(degrees) * se
    return {"difference": difference, "ci95": [difference - half, difference + half],
            "half_width": half, "measurable": abs(difference) > half,
            "seeds": [len(a_), len(b_)], "method": "Welch over seeds"}


def points(value: float) -> str:
    return f"{100 * value:+.2f} points"


def describe_difference(diff: dict[str, Any] | None, first: str, second: str) -> str:
    """One honest sentence: "student beats baseline by +1.06 points (95% interval +0.62 to
    +1.50)", or "no measurable difference between student and baseline (±0.45 points)"."""
    if diff is None:
        return f"{first} vs {second}: not measured"
    if not diff["measurable"]:
        return (f"no measurable difference between {first} and {second} "
                f"(±{100 * diff['half_width']:.2f} points, 95%)")
    lo, hi = diff["ci95"]
    verb = "beats" if diff["difference"] > 0 else "trails"
    return (f"{first} {verb} {second} by {points(diff['difference'])} "
            f"(95% interval {100 * lo:+.2f} to {100 * hi:+.2f})")
