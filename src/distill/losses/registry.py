"""Output losses by name, for recipes' ``[loss] kind``: each entry builds its loss from the
``[loss]`` table (and the two models, for losses that size themselves on them).

A new loss reaches recipes with one registration beside its class::

    @LOSSES.register("my-loss")
    def _build(spec, student, teacher):
        return MyLoss(spec.temperature, **spec.options)

``spec.options`` is the table's free ``options = {...}``, for settings only that loss has.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from distill.losses.base import DistillationLoss
from distill.losses.soft_targets import KDLoss
from distill.losses.token_kd import TokenKDLoss
from distill.registry import Registry

LossBuilder = Callable[[Any, nn.Module | None, nn.Module | None], DistillationLoss]
LOSSES: Registry[LossBuilder] = Registry("loss")


def build_loss(spec: Any, student: nn.Module | None = None,
               teacher: nn.Module | None = None) -> DistillationLoss:
    """The loss a ``[loss]`` table names (``kind``), with the table's settings; an option the
    loss does not take is a clear error naming it."""
    try:
        return LOSSES.get(spec.kind)(spec, student, teacher)
    except TypeError as err:
        raise ValueError(f"[loss] kind = '{spec.kind}' options {spec.options}: {err}") from None


@LOSSES.register("kd", aliases=("soft-targets", "hinton"))
def _kd(spec: Any, student: nn.Module | None, teacher: nn.Module | None) -> DistillationLoss:
    return KDLoss(spec.temperature, spec.alpha, **spec.options)


@LOSSES.register("token-kd", aliases=("token", "lm"))
def _token_kd(spec: Any, student: nn.Module | None, teacher: nn.Module | None
              ) -> DistillationLoss:
    return TokenKDLoss(spec.divergence, beta=spec.beta, temperature=spec.temperature,
                       alpha=spec.alpha, chunk_size=spec.chunk_size, **spec.options)


def _embedding(spec: Any, student: nn.Module | None, teacher: nn.Module | None
               ) -> DistillationLoss:
    from distill.hf.embeddings import EmbeddingLoss

    return EmbeddingLoss(spec.distance, student_width=getattr(student, "width", None),
                         teacher_width=getattr(teacher, "width", None), **spec.options)


LOSSES.register("embedding", _embedding)
