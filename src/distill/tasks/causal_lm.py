"""Causal language modelling: next-token labels at every position; perplexity, KL, agreement."""

from __future__ import annotations

from typing import Any

from torch import nn

from distill.losses.base import DistillationLoss
from distill.losses.token_kd import TokenKDLoss
from distill.tasks.base import Task


class CausalLM(Task):
    name = "causal-lm"
    headline = "perplexity"
    higher_is_better = False

    def evaluate(self, model: nn.Module, data: Any, *, teacher: Any = None, batch_size: int = 512,
                 device: str = "cpu", memo: dict[str, Any] | None = None) -> dict[str, float]:
        from distill.lm.evaluate import lm_metrics

        # a 50k vocabulary per position: far fewer sequences per batch than samples
        return lm_metrics(model, data, teacher=teacher, batch_size=max(1, batch_size // 64),
                          device=device)

    def default_loss(self, student: nn.Module | None = None,
                     teacher: nn.Module | None = None) -> DistillationLoss:
        return TokenKDLoss("forward_kl")


TASK = CausalLM()
