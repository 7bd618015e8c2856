"""Several losses at once, weighted: DistilBERT's soft targets + hidden-state cosine, and so on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from distill.losses.base import DistillationLoss


class CombinedLoss(DistillationLoss):
    """``sum(weight * loss)`` over named terms; the last values stay readable per term.

    >>> loss = CombinedLoss({"kd": KDLoss(2.0, 0.5), "hidden": (HiddenStateLoss(s, t), 1.0)})

    A term is a loss (weight 1) or ``(loss, weight)``. ``last`` holds each term's value from
    the latest call, for logging.
    """

    def __init__(self, terms: Mapping[str, DistillationLoss | tuple[DistillationLoss, float]]):
        super().__init__()
        if not terms:
            raise ValueError("CombinedLoss needs at least one term")
        self.terms = nn.ModuleDict()
        self.weights: dict[str, float] = {}
        for name, term in terms.items():
            loss, weight = term if isinstance(term, tuple) else (term, 1.0)
            if not isinstance(loss, DistillationLoss):
                raise TypeError(
                    f"term {name!r} is a {type(loss).__name__}, not a DistillationLoss"
                )
            if not weight >= 0:
                raise ValueError(f"term {name!r} has weight {weight}; weights must be >= 0")
            self.terms[name] = loss
            self.weights[name] = float(weight)
        self.needs_teacher = any(t.needs_teacher for t in self.terms.values())
        self.last: dict[str, float] = {}

    def forward(self, student_logits: Tensor, teacher_logits: Any = None,
                labels: Tensor | None = None) -> Tensor:
        total = None
        for name, loss in self.terms.items():
            value = loss(student_logits, teacher_logits if loss.needs_teacher else None, labels)
            self.last[name] = float(value.detach())
            weighted = self.weights[name] * value
            total = weighted if total is None else total + weighted
        return total

    def release(self) -> None:
        for loss in self.terms.values():
            loss.release()

    def extra_repr(self) -> str:
        return ", ".join(f"{n}×{w:g}" for n, w in self.weights.items())
