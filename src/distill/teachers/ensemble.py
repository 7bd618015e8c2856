"""Several teachers as one signal: averaged probabilities, averaged logits, or weighted.

Averaging probabilities keeps each member's confidence (a mixture of distributions, as in
Hinton et al.'s ensembles); averaging logits is a product of experts, sharper where members
agree. The combined distribution is then softened by the loss's temperature like any teacher's.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from distill.batches import Inputs, logits_of
from distill.teachers.fingerprint import teacher_fingerprint
from distill.teachers.online import as_teacher_signal
from distill.teachers.targets import TopKTargets

Combine = Literal["probs", "logits"]


def normalised_weights(count: int, combine: str, weights: Sequence[float] | None) -> list[float]:
    if count < 1:
        raise ValueError("an ensemble needs at least one teacher")
    if combine not in ("probs", "logits"):
        raise ValueError(f"combine must be 'probs' or 'logits', got {combine!r}")
    if weights is None:
        weights = [1.0] * count
    if len(weights) != count:
        raise ValueError(f"{len(weights)} weights for {count} teachers")
    if any(not (w >= 0 and math.isfinite(w)) for w in weights) or sum(weights) <= 0:
        raise ValueError(f"weights must be non-negative with a positive sum, got {list(weights)}")
    total = float(sum(weights))
    return [float(w) / total for w in weights]


def _check_shape(i: int, out: Tensor, earlier: Sequence[Tensor]) -> None:
    if earlier and out.shape != earlier[0].shape:
        raise ValueError(
            f"ensemble member {i} gives outputs of shape {tuple(out.shape)}, member 0 gives "
            f"{tuple(earlier[0].shape)}: all teachers must predict the same classes"
        )


def combine_outputs(outputs: Sequence[Tensor], weights: Sequence[float], combine: str) -> Tensor:
    """Weighted average of logits, or log of the weighted average of probabilities."""
    if combine == "logits":
        return sum(w * z.float() for w, z in zip(weights, outputs, strict=True))
    log_probs = torch.stack(
        [z.float().log_softmax(-1) + math.log(w)
         for w, z in zip(weights, outputs, strict=True) if w > 0]
    )
    return log_probs.logsumexp(0)


class Ensemble(nn.Module):
    """Several teacher modules as one module: usable as any teacher, and measurable as one
    model (parameters, size and latency add up, as they would in deployment)."""

    def __init__(
        self,
        members: Sequence[nn.Module],
        *,
        combine: Combine = "probs",
        weights: Sequence[float] | None = None,
    ):
        super().__init__()
        self.weights = normalised_weights(len(members), combine, weights)
        self.members = nn.ModuleList(members)
        self.combine = combine

    def forward(self, *args: Any, **kwargs: Any) -> Tensor:
        outputs = []
        for i, member in enumerate(self.members):
            out = logits_of(member(*args, **kwargs))
            _check_shape(i, out, outputs)
            outputs.append(out)
        return combine_outputs(outputs, self.weights, self.combine)


class EnsembleTeacher:
    """Several teacher signals as one: members are modules or signals (online, cached,
    precomputed), in any mix. For modules only, :class:`Ensemble` is the simpler choice.

    ``weights`` (default equal) are normalised to sum to one. With ``combine="probs"`` the
    signal returns log-probabilities, which are valid logits for the combined distribution.
    Sparse top-k members are expanded to full size per batch (their dropped mass spread evenly).
    """

    def __init__(
        self,
        members: Sequence[Any],
        *,
        combine: Combine = "probs",
        weights: Sequence[float] | None = None,
    ):
        self.weights = normalised_weights(len(members), combine, weights)
        self.members = [as_teacher_signal(m) for m in members]
        self.combine = combine

    def _member_logits(self, inputs: Inputs, indices: Tensor | None) -> list[Tensor]:
        outputs = []
        for i, member in enumerate(self.members):
            out = member.logits(inputs, indices)
            if isinstance(out, TopKTargets):
                out = out.dense_logits()
            elif not isinstance(out, Tensor):
                raise ValueError(f"ensemble member {i} gives {type(out).__name__}: sampled "
                                 "teacher targets cannot be averaged with other teachers")
            _check_shape(i, out, outputs)
            outputs.append(out.float())
        return outputs

    def logits(self, inputs: Inputs, indices: Tensor | None = None) -> Tensor:
        return combine_outputs(self._member_logits(inputs, indices), self.weights, self.combine)

    def to(self, device: torch.device | str) -> EnsembleTeacher:
        for member in self.members:
            member.to(device)
        return self

    def for_evaluation(self) -> EnsembleTeacher | None:
        evaluators = [m.for_evaluation() for m in self.members]
        if any(e is None for e in evaluators):
            return None
        return EnsembleTeacher(evaluators, combine=self.combine, weights=self.weights)

    def check_data(self, data: Any) -> None:
        for member in self.members:
            check = getattr(member, "check_data", None)
            if check is not None:
                check(data)

    def fingerprint(self) -> str:
        parts = [self.combine, *map(repr, self.weights)]
        parts += [teacher_fingerprint(getattr(m, "module", m)) for m in self.members]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()

    def __repr__(self) -> str:
        return f"EnsembleTeacher({len(self.members)} members, combine={self.combine!r})"
