"""A live teacher module, run in eval mode without gradients on every batch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from distill.batches import Inputs, forward


class OnlineTeacher:
    """Wraps an ``nn.Module`` teacher: eval mode, ``no_grad``, never trained, never saved."""

    def __init__(self, module: nn.Module):
        if not isinstance(module, nn.Module):
            raise TypeError(f"a teacher must be an nn.Module, got {type(module).__name__}")
        self.module = module.eval()

    @torch.no_grad()
    def logits(
        self,
        inputs: Inputs,
        indices: Tensor | None = None,
        read: Callable[[nn.Module, Inputs], Any] = forward,
    ) -> Any:
        """The teacher's logits, or whatever ``read`` takes from it (the loss's own reader)."""
        if self.module.training:  # someone called .train() on it since: teachers never train
            self.module.eval()
        return read(self.module, inputs)

    def to(self, device: torch.device | str) -> OnlineTeacher:
        self.module.to(device)
        return self

    def for_evaluation(self) -> OnlineTeacher:
        return self

    def __repr__(self) -> str:
        return f"OnlineTeacher({type(self.module).__name__})"


def as_teacher_signal(teacher) -> OnlineTeacher | None:
    """Accept a module or any object with ``logits``/``to`` (a teacher signal)."""
    from distill.teachers.base import TeacherSignal

    if teacher is None:
        return None
    if isinstance(teacher, nn.Module):
        return OnlineTeacher(teacher)
    if isinstance(teacher, TeacherSignal):
        return teacher
    raise TypeError(
        f"teacher must be an nn.Module or a teacher signal, got {type(teacher).__name__}"
    )
