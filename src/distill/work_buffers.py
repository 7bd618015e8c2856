"""Block-sized work tensors made once per pass and reused by every block.

Row-blocked passes over a large vocabulary (the fused token loss, drawing sampled targets from
a teacher's logits) would otherwise make a fresh ``(rows, vocabulary)`` result per operation; on
a CPU its page faults cost more than its arithmetic (measured: the dense divergence of one
block took 23 ms allocating, 7.6 ms in place).
"""

from __future__ import annotations

import torch
from torch import Tensor


class WorkBuffers:
    """Named ``(rows, vocabulary)`` tensors; ``get`` returns the first ``rows`` of one, made on
    first use (and remade larger if a pass asks for more rows than it was made for)."""

    def __init__(self, rows: int, vocab: int, device: torch.device):
        self.rows, self.vocab, self.device = rows, vocab, device
        self._made: dict[str, Tensor] = {}

    def get(self, name: str, rows: int, dtype: torch.dtype = torch.float32) -> Tensor:
        buffer = self._made.get(name)
        if buffer is None or buffer.shape[0] < rows or buffer.dtype != dtype:
            buffer = self._made[name] = torch.empty(max(rows, self.rows), self.vocab,
                                                    dtype=dtype, device=self.device)
        return buffer[:rows]


def work_tensor(buffers: WorkBuffers | None, name: str, like: Tensor,
                dtype: torch.dtype = torch.float32) -> Tensor:
    """A tensor shaped as the block ``like``: a reused buffer when the pass has them and
    ``like`` is a ``(rows, vocabulary)`` block, a fresh one otherwise."""
    if buffers is None or like.dim() != 2 or like.shape[-1] != buffers.vocab:
        return torch.empty(like.shape, dtype=dtype, device=like.device)
    return buffers.get(name, like.shape[0], dtype)
