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

Hybrid (``from_logits(..., top_k=k)``): the k most likely tokens are kept exactly, with their
probabilities ``p_i``, and the n draws come from the rest of the distribution (renormalised),
each weighing ``p_rest / n``. Then ``p̂ = Σ_kept p_i·onehot(i) + (p_rest/n)·Σ_j onehot(x_j)``
is still unbiased, and its variance is only the tail's: the head of the distribution, where
most of the mass and most of the gradient are, costs no sampling noise. The targets carry
these per-token ``weights`` (summing to one per position); the estimate becomes
``KL̂ = −H(p_T) − Σ_j w_j log q_T(x_j)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from distill.work_buffers import WorkBuffers, work_tensor


@dataclass
class SampledTargets:
    """``indices``: ``(..., n)`` token ids drawn from the teacher at ``temperature``;
    ``entropy``: ``(...)``, the teacher's entropy at that temperature in nats; ``weights``:
    ``(..., n)``, each token's share of the estimate (``None``: ``1/n`` each)."""

    indices: Tensor
    entropy: Tensor
    temperature: float
    vocab_size: int
    weights: Tensor | None = None
    _kept: int = field(default=0, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.entropy.shape != self.indices.shape[:-1]:
            raise ValueError(f"sampled targets' entropy has shape {tuple(self.entropy.shape)}, "
                             f"expected {tuple(self.indices.shape[:-1])} (one per position)")
        if self.weights is not None and self.weights.shape != self.indices.shape:
            raise ValueError(f"sampled targets' weights have shape {tuple(self.weights.shape)}, "
                             f"expected {tuple(self.indices.shape)} (one per token)")
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

    @property
    def kept(self) -> int:
        """How many leading tokens are kept exactly (hybrid targets), not drawn."""
        return self._kept

    @classmethod
    def from_logits(cls, logits: Tensor, n: int, temperature: float = 1.0, *,
                    top_k: int = 0, sampler: str = "stratified",
                    generator: torch.Generator | None = None) -> SampledTargets:
        """Draw ``n`` tokens per position from ``softmax(logits / T)``; with ``top_k``, keep
        the k most likely tokens exactly and draw from the rest.

        ``sampler``: ``"multinomial"``, n independent draws; ``"stratified"``, one draw from
        each n-th of the cumulative distribution (systematic sampling: ``u_j = (j + U) / n``
        with one uniform ``U`` per position). Every draw is still distributed as ``p`` on
        average, so the estimate stays unbiased, but a token holding a share ``p ≥ 1/n`` is
        drawn ``⌊n·p⌋`` or ``⌈n·p⌉`` times instead of anything from 0 to n: far less noise
        at the same bytes. Stratified is the default here as in ``cache_teacher`` and recipes.
        """
        vocab = _check(logits, n, temperature, top_k, sampler)
        lead = logits.shape[:-1]
        parts = _draw_rows(logits.reshape(-1, vocab), n, float(temperature), top_k, sampler,
                           generator, None)
        return cls._from_parts(parts, lead, n, float(temperature), vocab, top_k)

    @classmethod
    def from_logits_rows(cls, logits: Tensor, n: int, temperature: float = 1.0, *,
                         top_k: int = 0, sampler: str = "stratified",
                         generators: list[torch.Generator]) -> SampledTargets:
        """As :meth:`from_logits` for each ``logits[r]`` with its own ``generators[r]``: the
        draws equal those of separate calls, row by row (a cache seeds each row by its index,
        so a resumed build draws what an uninterrupted one would). The work tensors of one row
        are reused by the next: made afresh for every row, their page faults cost more than the
        arithmetic in them (a cache of sampled targets then fills at close to the teacher's
        own speed; BENCHMARKS.md)."""
        if len(generators) != len(logits):
            raise ValueError(f"{len(logits)} rows of logits need as many generators, got "
                             f"{len(generators)}")
        vocab = _check(logits, n, temperature, top_k, sampler)
        row_shape = logits.shape[1:-1]
        rows = int(torch.Size(row_shape).numel())
        buffers = WorkBuffers(rows, vocab, logits.device)
        drawn = [cls._from_parts(_draw_rows(logits[r].reshape(-1, vocab), n, float(temperature),
                                            top_k, sampler, g, buffers), row_shape, n,
                                 float(temperature), vocab, top_k)
                 for r, g in enumerate(generators)]
        weights = None if not top_k else torch.stack([d.weights for d in drawn])
        return cls(torch.stack([d.indices for d in drawn]),
                   torch.stack([d.entropy for d in drawn]), float(temperature), vocab, weights,
                   top_k)

    @classmethod
    def _from_parts(cls, parts: tuple[Tensor, ...], lead: torch.Size, n: int, temperature: float,
                    vocab: int, top_k: int) -> SampledTargets:
        if not top_k:
            drawn, entropy = parts
            return cls(drawn.reshape(*lead, n), entropy.reshape(lead), temperature, vocab)
        drawn, entropy, head, head_ids, rest = parts
        return cls.hybrid(head_ids.reshape(*lead, top_k), head.reshape(*lead, top_k),
                          drawn.reshape(*lead, n), rest.reshape(lead), entropy.reshape(lead),
                          temperature, vocab)

    @classmethod
    def hybrid(cls, head_ids: Tensor, head_probs: Tensor, drawn: Tensor, rest: Tensor,
               entropy: Tensor, temperature: float, vocab_size: int) -> SampledTargets:
        """Top-k tokens with their probabilities, and n draws from the rest sharing ``rest``."""
        n = drawn.shape[-1]
        tail_weights = (rest.float() / n).unsqueeze(-1).expand(*rest.shape, n)
        weights = torch.cat([head_probs.float(), tail_weights], -1)
        weights = weights / weights.sum(-1, keepdim=True)  # stored rounded: sum exactly one
        return cls(torch.cat([head_ids, drawn], -1), entropy, temperature, vocab_size, weights,
                   int(head_ids.shape[-1]))

    def _like(self, **changes) -> SampledTargets:
        fields = dict(indices=self.indices, entropy=self.entropy, weights=self.weights)
        fields.update(changes)
        return SampledTargets(fields["indices"], fields["entropy"], self.temperature,
                              self.vocab_size, fields["weights"], self._kept)

    def positions(self, sl: slice) -> SampledTargets:
        return self._like(indices=self.indices[:, sl], entropy=self.entropy[:, sl],
                          weights=None if self.weights is None else self.weights[:, sl])

    def rows(self) -> SampledTargets:
        """Positions flattened to one dimension: ``(positions, n)``."""
        return self._like(indices=self.indices.reshape(-1, self.n),
                          entropy=self.entropy.reshape(-1),
                          weights=None if self.weights is None
                          else self.weights.reshape(-1, self.n))

    def to(self, device: torch.device | str) -> SampledTargets:
        return self._like(indices=self.indices.to(device), entropy=self.entropy.to(device),
                          weights=None if self.weights is None else self.weights.to(device))

    def detach(self) -> SampledTargets:
        return self._like(indices=self.indices.detach(), entropy=self.entropy.detach(),
                          weights=None if self.weights is None else self.weights.detach())

    def is_finite(self) -> bool:
        finite = bool(torch.isfinite(self.entropy).all())
        return finite and (self.weights is None or bool(torch.isfinite(self.weights).all()))

    def forward_kl(self, log_q: Tensor) -> Tensor:
        """The unbiased estimate of KL(p_T ‖ q_T) per position, from the student's
        log-probabilities at the same temperature ``log_q`` (``(positions, vocabulary)``,
        positions flattened as the indices are)."""
        ids = self.indices.reshape(-1, self.n).long()
        picked = log_q.gather(-1, ids)
        if self.weights is None:
            return -picked.mean(-1) - self.entropy.reshape(-1).float()
        weighted = (picked * self.weights.reshape(-1, self.n).float()).sum(-1)
        return -weighted - self.entropy.reshape(-1).float()


SAMPLERS = ("multinomial", "stratified")


def _check(logits: Tensor, n: int, temperature: float, top_k: int, sampler: str) -> int:
    """The vocabulary size, once the settings are known to be valid for ``logits``."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    vocab = logits.shape[-1]
    if not 0 <= top_k < vocab:
        raise ValueError(f"top_k must be within [0, {vocab - 1}], got {top_k}")
    return vocab


def _draw_rows(logits: Tensor, n: int, temperature: float, top_k: int, sampler: str,
               generator: torch.Generator | None,
               buffers: WorkBuffers | None) -> tuple[Tensor, ...]:
    """Draws and entropy (and, with ``top_k``, the head, its ids and the tail's mass) for
    ``logits`` ``(rows, vocabulary)``."""
    x = logits.detach().float()
    if temperature != 1.0:
        x = torch.div(x, temperature, out=work_tensor(buffers, "scaled", x))
    log_p = torch.log_softmax(x, -1, out=work_tensor(buffers, "log_p", x))
    p = torch.exp(log_p, out=work_tensor(buffers, "p", x))
    entropy = -torch.mul(p, log_p, out=work_tensor(buffers, "p_log_p", x)).nansum(-1)
    if not top_k:
        return _draw(p, n, sampler, generator, buffers), entropy
    head, head_ids = p.topk(top_k, dim=-1)
    tail = work_tensor(buffers, "p_log_p", x).copy_(p).scatter_(-1, head_ids, 0.0)
    rest = tail.sum(-1, keepdim=True)
    # a position whose top k hold everything: draw anything, at weight zero
    if not bool((rest > 0).all()):
        tail = torch.where(rest > 0, tail, torch.ones_like(tail))
    return _draw(tail, n, sampler, generator, buffers), entropy, head, head_ids, rest


def _draw(weights: Tensor, n: int, sampler: str, generator: torch.Generator | None,
          buffers: WorkBuffers | None = None) -> Tensor:
    """``n`` token ids per row of non-negative ``weights`` ``(rows, vocabulary)``."""
    if sampler == "multinomial":
        return torch.multinomial(weights, n, replacement=True, generator=generator)
    cdf = work_tensor(buffers, "cdf", weights, torch.float64).copy_(weights).cumsum_(-1)
    total = cdf[:, -1:]
    offset = torch.rand(len(weights), 1, generator=generator, dtype=torch.float64)
    points = (torch.arange(n, dtype=torch.float64) + offset) / n * total
    # the first token whose cumulative weight passes the point: zero-weight tokens never are
    return torch.searchsorted(cdf, points, right=True).clamp_(max=weights.shape[-1] - 1)
