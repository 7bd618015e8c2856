"""Sampled teacher targets: a few tokens drawn from the teacher's next-token distribution per
position, an unbiased stand-in for the whole distribution (Anshumann et al., "Sparse Logit
Sampling", ACL 2025).

Top-k targets keep the largest entries and are biased: everything outside the k is lumped
together, and the student is never told how the tail is shaped. Sampling instead draws
``x_1 … x_n ~ p_T`` (the teacher's distribution at temperature T) and keeps only the ids, plus
the teacher's entropy ``H(p_T)`` (one number per position). With ``p̂ = (1/n) Σ_j onehot(x_j)``,
``E[p̂] = p_T``, and because the forward KL is linear in the teacher's distribution once the
student's log-probabilities are fixed,

    KL̂ = −H(p_T) − (1/n) Σ_j log q_T(x_j)          E[KL̂] = KL(p_T ‖ q_T)

    ∂KL̂/∂z = (q_T − p̂) / T                          E[∂KL̂/∂z] = (q_T − p_T) / T = ∂KL/∂z

for student logits ``z`` and ``q_T = softmax(z / T)``: value and gradient are unbiased, at any
``n``. Storage: ``n`` token ids (2 bytes each below 65,536 tokens) and a float16 entropy, so 12
samples cost 26 bytes a position against 98,304 for SmolLM2's dense float16 logits. Only the
forward KL can be estimated this way (reverse KL and JSD weigh tokens by the student's
probabilities, which samples from the teacher do not give), and the loss must use the
temperature the samples were drawn at.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class SampledTargets:
    """``indices``: ``(..., n)`` token ids drawn from the teacher at ``temperature``;
    ``entropy``: ``(...)``, the teacher's entropy at that temperature in nats."""

    indices: Tensor
    entropy: Tensor
    temperature: float
    vocab_size: int

    def __post_init__(self) -> None:
        if self.entropy.shape != self.indices.shape[:-1]:
            raise ValueError(f"sampled targets' entropy has shape {tuple(self.entropy.shape)}, "
                             f"expected {tuple(self.indices.shape[:-1])} (one per position)")
        if self.n < 1:
            raise ValueError("sampled targets need at least one sample per position")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")

    @property
    def n(self) -> int:
        return int(self.indices.shape[-1])

    @property
    def shape(self) -> torch.Size:
        """The shape dense logits would have: ``(..., vocab_size)``."""
        return torch.Size((*self.indices.shape[:-1], self.vocab_size))

    @classmethod
    def from_logits(cls, logits: Tensor, n: int, temperature: float = 1.0, *,
                    generator: torch.Generator | None = None) -> SampledTargets:
        """Draw ``n`` tokens per position (with replacement) from ``softmax(logits / T)``."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        vocab = logits.shape[-1]
        log_p = F.log_softmax(logits.detach().float() / temperature, dim=-1)
        flat = log_p.reshape(-1, vocab)
        drawn = torch.multinomial(flat.exp(), n, replacement=True, generator=generator)
        entropy = -(flat.exp() * flat).nansum(-1)
        return cls(drawn.reshape(*logits.shape[:-1], n),
                   entropy.reshape(logits.shape[:-1]), float(temperature), vocab)

    def positions(self, sl: slice) -> SampledTargets:
        return SampledTargets(self.indices[:, sl], self.entropy[:, sl], self.temperature,
                              self.vocab_size)

    def to(self, device: torch.device | str) -> SampledTargets:
        return SampledTargets(self.indices.to(device), self.entropy.to(device), self.temperature,
                              self.vocab_size)

    def detach(self) -> SampledTargets:
        return SampledTargets(self.indices.detach(), self.entropy.detach(), self.temperature,
                              self.vocab_size)

    def is_finite(self) -> bool:
        return bool(torch.isfinite(self.entropy).all())

    def forward_kl(self, log_q: Tensor) -> Tensor:
        """The unbiased estimate of KL(p_T ‖ q_T) per position, from the student's
        log-probabilities at the same temperature ``log_q`` (``(positions, vocabulary)``,
        positions flattened as the indices are)."""
        ids = self.indices.reshape(-1, self.n).long()
        return -log_q.gather(-1, ids).mean(-1) - self.entropy.reshape(-1).float()
