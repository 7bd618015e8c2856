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


def require_indices(indices: Tensor | None, what: str) -> Tensor:
    """Stored teacher outputs are rows by sample index: a batch must say which samples it holds."""
    if indices is None:
        raise ValueError(
            f"{what} teacher outputs are looked up by sample index: pass the training data as a "
            "Dataset (not a DataLoader) so distill knows each batch's indices"
        )
    return indices.cpu()


def device_of(inputs: Inputs | None) -> torch.device:
    """Where a batch lives; stored outputs asked for without inputs come back on the CPU."""
    if inputs is None:
        return torch.device("cpu")
    return inputs.device if isinstance(inputs, Tensor) else next(iter(inputs.values())).device
