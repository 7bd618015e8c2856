"""Sparse teacher targets: the k most likely classes (or tokens) and the probability left over.

A language-model teacher's full next-token distribution is ~50k floats per token; its top 20
entries usually hold nearly all of the mass. Keeping the top-k logits plus the leftover mass
``rest`` (at temperature 1) costs k·6 + 4 bytes per position and still defines a proper
distribution over k + 1 outcomes: the k kept entries and one "everything else" bucket.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class TopKTargets:
    """Top-k teacher logits for each position: ``indices``/``logits`` of shape ``(..., k)``.

    ``rest`` (shape ``(...)``) is the teacher's probability mass outside the top k at
    temperature 1; ``vocab_size`` is the size of the full distribution.
    """

    indices: Tensor
    logits: Tensor
    rest: Tensor
    vocab_size: int

    def __post_init__(self) -> None:
        if self.indices.shape != self.logits.shape:
            raise ValueError(
                f"top-k indices {tuple(self.indices.shape)} and logits "
                f"{tuple(self.logits.shape)} must have the same shape"
            )
        if self.rest.shape != self.indices.shape[:-1]:
            raise ValueError(
                f"top-k rest mass has shape {tuple(self.rest.shape)}, expected "
                f"{tuple(self.indices.shape[:-1])} (one value per position)"
            )
        if not 0 < self.k <= self.vocab_size:
            raise ValueError(f"k={self.k} must be within [1, vocab_size={self.vocab_size}]")

    @property
    def k(self) -> int:
        return int(self.indices.shape[-1])

    @property
    def shape(self) -> torch.Size:
        """The shape dense logits would have: ``(..., vocab_size)``."""
        return torch.Size((*self.indices.shape[:-1], self.vocab_size))

    @classmethod
    def from_logits(cls, logits: Tensor, k: int) -> TopKTargets:
        """Keep the ``k`` largest logits of each position and the mass outside them."""
        vocab = logits.shape[-1]
        if not 0 < k <= vocab:
            raise ValueError(f"k={k} must be within [1, {vocab}] (the number of outputs)")
        full = logits.detach().float()
        values, indices = full.topk(k, dim=-1)
        # 1 - exp(lse_top - lse_all), computed with expm1 so a tiny leftover keeps its digits
        rest = -torch.expm1(values.logsumexp(-1) - full.logsumexp(-1))
        return cls(indices, values, rest.clamp_(min=0.0, max=1.0), vocab)

    def to(self, device: torch.device | str) -> TopKTargets:
        return TopKTargets(self.indices.to(device), self.logits.to(device), self.rest.to(device),
                           self.vocab_size)

    def detach(self) -> TopKTargets:
        return TopKTargets(self.indices.detach(), self.logits.detach(), self.rest.detach(),
                           self.vocab_size)

    def is_finite(self) -> bool:
        return bool(torch.isfinite(self.logits).all()) and bool(torch.isfinite(self.rest).all())

    def bucket_log_probs(self, temperature: float = 1.0) -> Tensor:
        """Log-probabilities of the k kept entries and the leftover bucket: ``(..., k + 1)``.

        At temperature 1 the buckets are exact. At other temperatures the leftover mass is
        assumed spread evenly over the ``vocab_size - k`` dropped entries (the maximum-entropy
        guess), which is what softening needs to know about entries that were not kept.
        """
        z = self.logits.float()
        rest = self.rest.float()
        dropped = self.vocab_size - self.k
        # the full log-normaliser at T=1: sum(exp(z - lse)) = 1 - rest
        lse = z.logsumexp(-1) - torch.log1p(-rest.clamp(max=1.0 - 1e-7))
        if dropped > 0:
            tail_logit = lse + torch.log(rest.clamp(min=1e-30)) - math.log(dropped)
            tail = math.log(dropped) + tail_logit / temperature
            tail = torch.where(rest > 0, tail, torch.full_like(tail, -math.inf))
        else:
            tail = torch.full_like(lse, -math.inf)
        buckets = torch.cat([z / temperature, tail.unsqueeze(-1)], dim=-1)
        return buckets - buckets.logsumexp(-1, keepdim=True)

    def dense_logits(self) -> Tensor:
        """Full-size logits with the dropped mass spread evenly: for small vocabularies and for
        combining with dense teachers; exact on the kept entries and the leftover total."""
        dropped = self.vocab_size - self.k
        z = self.logits.float()
        rest = self.rest.float()
        lse = z.logsumexp(-1) - torch.log1p(-rest.clamp(max=1.0 - 1e-7))
        fill = lse + torch.log(rest.clamp(min=1e-30)) - math.log(max(dropped, 1))
        out = fill.unsqueeze(-1).expand(*self.shape).clone()
        return out.scatter_(-1, self.indices.long(), z)
