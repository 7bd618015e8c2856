"""Self-distillation from a moving average of the student's own weights (a "mean teacher").

No separate teacher is trained: the average of the student's recent weights is a smoother,
usually better model than the student at any one step, and its soft targets regularise the
student (Tarvainen & Valpola 2017). The engine updates it after every optimizer step.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from distill.batches import Inputs, forward
from distill.engine.callbacks import Callback, FitState
from distill.teachers.fingerprint import module_fingerprint


class EMATeacher(Callback):
    """A teacher signal whose weights are ``decay * teacher + (1 - decay) * student`` per step.

    Pass it as the teacher of :func:`distill.distill`; the engine registers it as a callback
    so it follows the student. It starts as a copy of the student it is given.
    """

    changes_during_training = True  # the engine re-runs it for every evaluation

    def __init__(self, student: nn.Module, decay: float = 0.99):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be within [0, 1), got {decay}")
        self.student = student
        self.decay = float(decay)
        self.module = copy.deepcopy(student).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def on_step_end(self, state: FitState) -> None:
        if state.model is not self.student:
            raise ValueError("EMATeacher follows the student it was built from, not this model")
        for mine, theirs in zip(self.module.parameters(), self.student.parameters(), strict=True):
            mine.lerp_(theirs.detach(), 1.0 - self.decay)
        for mine, theirs in zip(self.module.buffers(), self.student.buffers(), strict=True):
            mine.copy_(theirs)

    @torch.no_grad()
    def logits(self, inputs: Inputs, indices: Tensor | None = None) -> Tensor:
        self.module.eval()
        return forward(self.module, inputs)

    def to(self, device: torch.device | str) -> EMATeacher:
        self.module.to(device)
        return self

    def for_evaluation(self) -> EMATeacher:
        return self

    def fingerprint(self) -> str:
        return module_fingerprint(self.module)

    def __repr__(self) -> str:
        return f"EMATeacher(decay={self.decay})"
