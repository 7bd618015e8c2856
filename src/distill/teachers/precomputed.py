"""Teacher outputs computed once per sample and looked up by index on every later epoch.

Without augmentation the teacher sees each training sample identically every epoch, so running
it again is wasted work: for a CNN teacher and an MLP student it is most of the cost. This keeps
the table in memory; on-disk, sharded and top-k caches build on the same lookup.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from distill.batches import Inputs
from distill.teachers.base import device_of, require_indices


class PrecomputedTeacher:
    """A teacher signal backed by a ``(num_samples, ...)`` table of logits."""

    def __init__(self, table: Tensor, source: nn.Module | None = None):
        if table.dim() < 2:
            raise ValueError(
                f"a logits table needs shape (samples, classes), got {tuple(table.shape)}"
            )
        if not bool(torch.isfinite(table).all()):
            bad = (~torch.isfinite(table)).reshape(len(table), -1).any(-1).nonzero().flatten()
            raise ValueError(
                f"the teacher produced NaN or Inf logits for {len(bad)} samples "
                f"(first indices: {bad[:5].tolist()})"
            )
        self.table = table
        self.source = source  # the module the table came from, to label held-out data

    @classmethod
    def from_module(
        cls,
        teacher: nn.Module,
        data,
        batch_size: int = 512,
        device: str | torch.device = "cpu",
        progress: bool | None = False,
    ) -> PrecomputedTeacher:
        """Run ``teacher`` once over ``data`` (in dataset order)."""
        from distill.evaluate.predict import predict

        outputs = predict(teacher, data, batch_size, device, progress, "teacher outputs")
        return cls(outputs.logits, source=teacher)

    def logits(self, inputs: Inputs, indices: Tensor | None = None) -> Tensor:
        return self.table[require_indices(indices, "precomputed")].to(device_of(inputs))

    def to(self, device: torch.device | str) -> PrecomputedTeacher:
        if self.source is not None:
            self.source.to(device)
        return self  # the table stays in host memory; rows move per batch

    def for_evaluation(self):
        """The table only covers the training samples: held-out data needs the source module."""
        from distill.teachers.online import OnlineTeacher

        return OnlineTeacher(self.source) if self.source is not None else None

    def fingerprint(self) -> str:
        import hashlib

        table = self.table.detach().float().contiguous()
        return hashlib.sha256(table.numpy().tobytes()).hexdigest()

    def __repr__(self) -> str:
        return f"PrecomputedTeacher({tuple(self.table.shape)})"
