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
from torch import Tensor

from distill.batches import Inputs
from distill.teachers.fingerprint import teacher_fingerprint
from distill.teachers.online import as_teacher_signal
from distill.teachers.targets import TopKTargets

Combine = Literal["probs", "logits"]


class EnsembleTeacher:
    """Members are modules or teacher signals (online, cached, precomputed), in any mix.

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
        if len(members) < 1:
            raise ValueError("an ensemble needs at least one teacher")
        if combine not in ("probs", "logits"):
            raise ValueError(f"combine must be 'probs' or 'logits', got {combine!r}")
        if weights is None:
            weights = [1.0] * len(members)
        if len(weights) != len(members):
            raise ValueError(f"{len(weights)} weights for {len(members)} teachers")
        if any(not (w >= 0 and math.isfinite(w)) for w in weights) or sum(weights) <= 0:
            raise ValueError(f"weights must be non-negative with a positive sum, got {weights}")
        total = float(sum(weights))
        self.weights = [float(w) / total for w in weights]
        self.members = [as_teacher_signal(m) for m in members]
        self.combine = combine

    def _member_logits(self, inputs: Inputs, indices: Tensor | None) -> list[Tensor]:
        outputs = []
        for i, member in enumerate(self.members):
            out = member.logits(inputs, indices)
            if isinstance(out, TopKTargets):
                out = out.dense_logits()
            if outputs and out.shape != outputs[0].shape:
                raise ValueError(
                    f"ensemble member {i} gives outputs of shape {tuple(out.shape)}, member 0 "
                    f"gives {tuple(outputs[0].shape)}: all teachers must predict the same classes"
                )
            outputs.append(out.float())
        return outputs

    def logits(self, inputs: Inputs, indices: Tensor | None = None) -> Tensor:
        outputs = self._member_logits(inputs, indices)
        if self.combine == "logits":
            return sum(w * z for w, z in zip(self.weights, outputs, strict=True))
        log_probs = torch.stack(
            [z.log_softmax(-1) + math.log(w) for w, z in zip(self.weights, outputs, strict=True)
             if w > 0]
        )
        return log_probs.logsumexp(0)  # log of the weighted mixture of probabilities

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
