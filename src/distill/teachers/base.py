"""A teacher signal: whatever produces the teacher's outputs for a batch.

The engine only asks a signal for logits given the batch's inputs (and, when known, the sample
indices, so precomputed signals can look rows up). A live module is one kind of signal; cached,
ensembled and self-distilled teachers plug in behind the same two methods.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from distill.batches import Inputs


@runtime_checkable
class TeacherSignal(Protocol):
    def logits(self, inputs: Inputs, indices: Tensor | None = None) -> Tensor: ...

    def to(self, device: torch.device | str) -> TeacherSignal: ...

    def for_evaluation(self) -> TeacherSignal | None:
        """A signal that can label *any* data (e.g. a held-out set), or None if it cannot."""
        ...
