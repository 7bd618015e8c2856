"""The forward-KL token loss with a closed-form gradient, a block of positions at a time.

Autograd through ``log_softmax`` → ``divergence`` keeps several ``positions × vocabulary``
tensors alive (the student's log-probabilities, the teacher's probabilities, their product, a
masked copy, and as many gradients), and cross-entropy blended in takes a second
log-softmax. Yet the gradient of the blended loss with respect to the student's logits ``z``
has a closed form:

    ∂/∂z [α·T²·KL(p_T ‖ q_T) + (1 − α)·CE(q_1, y)] = α·T·(q_T − p̂) + (1 − α)·(q_1 − onehot(y))

where ``q_T = softmax(z / T)`` and ``p̂`` is whatever stands for the teacher: its dense
distribution ``softmax(t / T)``; the mean of one-hot draws for sampled targets
(:mod:`distill.teachers.sampled`); for top-k buckets, the kept probabilities on the kept tokens
and ``q_i · p_rest / q_rest`` on each other token (the student's own tail shape, scaled to the
teacher's leftover mass). So the loss needs only the student's log-normaliser per position
(shared with cross-entropy at T = 1) and a gather, never a second vocabulary-sized tensor.

Two entry points:

* :func:`fused_linear_token_loss` takes the student's last hidden states and its linear output
  head. Each block of positions makes its logits, its loss and at once its gradient, which is
  multiplied back through the head (``∂/∂h = g·W``, ``∂/∂W += gᵀ·h``): logits never exist for
  more than one block, and nothing is recomputed in the backward pass (chunking with
  activation checkpointing runs the head and the loss twice).
* :func:`fused_token_loss` takes logits that already exist (models without a separable head);
  its backward pass writes the gradient into one logits-sized buffer.

Blocks are a few million entries, so temporaries stay megabytes whatever the vocabulary;
half-precision inputs are widened a block at a time. Written here rather than taken from a
library: the fused losses of this kind (Liger Kernel's fused linear cross-entropy, Apple's Cut
Cross-Entropy) are Triton kernels for GPUs; on a CPU a blocked PyTorch formulation with a
closed-form gradient is what removes the extra tensors and the recomputation.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from distill.teachers.sampled import SampledTargets
from distill.teachers.targets import TopKTargets
from distill.work_buffers import WorkBuffers, work_tensor

BLOCK_ENTRIES = 1 << 21  # entries of a block: 8 MB per float32 temporary
_LOG_FLOOR = -100.0  # as distill.losses.divergences: an impossible bucket costs a finite amount

Target = Tensor | TopKTargets | SampledTargets | None


def _teacher_parts(teacher: Any, alpha: float, temperature: float,
                   flat: bool) -> tuple[str, tuple[Any, ...]]:
    """The kind of target and its tensors (rows flattened when ``flat``)."""
    def rows(x: Tensor) -> Tensor:
        return x.reshape(-1, *x.shape[2:]) if flat else x

    if teacher is None or alpha == 0:
        return "none", ()
    if isinstance(teacher, SampledTargets):
        if teacher.weights is not None:  # hybrid: top-k exactly, the tail drawn
            return "weighted", (rows(teacher.indices), rows(teacher.entropy),
                                rows(teacher.weights))
        return "sampled", (rows(teacher.indices), rows(teacher.entropy))
    if isinstance(teacher, TopKTargets):
        return "topk", (rows(teacher.indices), rows(teacher.bucket_log_probs(temperature)))
    hidden = getattr(teacher, "hidden", None)
    if hidden is not None:  # a live teacher's hidden states: its logits made block by block
        return "dense", (_HeadRows(rows(hidden.detach()), teacher.head),)
    return "dense", (rows(teacher.detach()),)


class _HeadRows:
    """A teacher's logits, made only for the rows asked for."""

    def __init__(self, hidden: Tensor, head: nn.Module):
        self.hidden, self.head = hidden, head

    def __getitem__(self, rows: slice) -> Tensor:
        with torch.no_grad():
            return self.head(self.hidden[rows])


def linear_head(module: nn.Module) -> bool:
    """A plain ``nn.Linear`` whose weight is an ordinary tensor (not sharded by FSDP)."""
    if type(module) is not nn.Linear:
        return False
    return all(type(p) is nn.Parameter for p in module.parameters())


def fused_linear_token_loss(hidden: Tensor, head: nn.Linear, teacher: Any, labels: Tensor | None,
                            keep: Tensor, *, temperature: float = 1.0,
                            alpha: float = 1.0) -> Tensor:
    """Sum over kept positions of ``alpha·T²·KL(p_T ‖ q_T) + (1 − alpha)·CE`` for the logits
    ``head(hidden)``, which are never made whole.

    ``hidden``: the student's last hidden states ``(batch, positions, width)``; ``head``: its
    output layer; ``teacher``: dense logits ``(batch, positions, vocabulary)``, a live
    teacher's :class:`~distill.lm.heads.HiddenStates`, :class:`TopKTargets`,
    :class:`SampledTargets`, or ``None`` for cross-entropy alone; ``labels`` and the boolean
    ``keep``: ``(batch, positions)``.
    """
    kind, parts = _teacher_parts(teacher, alpha, temperature, flat=True)
    alpha_ce = 0.0 if labels is None else 1.0 - alpha
    flat_labels = None if labels is None else labels.reshape(-1)
    settings = _Settings(kind, float(alpha), float(alpha_ce), float(temperature), parts)
    args = (hidden, head.weight) if head.bias is None else (hidden, head.weight, head.bias)
    return _FusedLinear.apply(settings, keep.reshape(-1), flat_labels, *args)


def fused_token_loss(student_logits: Tensor, teacher: Target, labels: Tensor | None,
                     keep: Tensor, *, temperature: float = 1.0, alpha: float = 1.0) -> Tensor:
    """As :func:`fused_linear_token_loss`, from logits ``(batch, positions, vocabulary)`` that
    exist already. Agrees with ``TokenKDLoss(..., fused=False)`` in value and gradient."""
    kind, parts = _teacher_parts(teacher, alpha, temperature, flat=False)
    alpha_ce = 0.0 if labels is None else 1.0 - alpha
    settings = _Settings(kind, float(alpha), float(alpha_ce), float(temperature), parts)
    return _FusedLogits.apply(settings, keep, labels, student_logits)


class _Settings:
    def __init__(self, kind: str, alpha: float, alpha_ce: float, t: float, parts: tuple):
        self.kind, self.alpha, self.alpha_ce, self.t, self.parts = kind, alpha, alpha_ce, t, parts
        self.kd = alpha * t  # α·T² · (1/T): the KL's gradient carries one factor 1/T
        self.buffers: WorkBuffers | None = None  # set for one pass over the blocks


def _buffer(s: _Settings, name: str, like: Tensor) -> Tensor:
    return work_tensor(s.buffers, name, like)


def _rows_per_block(vocab: int) -> int:
    return max(1, BLOCK_ENTRIES // max(vocab, 1))


def _blocks(rows: int, vocab: int) -> Iterator[slice]:
    step = _rows_per_block(vocab)
    for start in range(0, rows, step):
        yield slice(start, min(start + step, rows))


class _FusedLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, s: _Settings, keep: Tensor, labels: Tensor | None, hidden: Tensor,
                weight: Tensor, bias: Tensor | None = None) -> Tensor:
        flat = hidden.reshape(-1, hidden.shape[-1])
        need_grad = any(ctx.needs_input_grad[3:])
        w32 = weight.float() if need_grad else weight
        zeros = dict(dtype=torch.float32, device=hidden.device)
        grad_h = torch.zeros(flat.shape, **zeros) if need_grad else None
        grad_w = torch.zeros(weight.shape, **zeros) if need_grad else None
        grad_b = torch.zeros(weight.shape[0], **zeros) if need_grad and bias is not None else None
        total = torch.zeros((), dtype=torch.float64, device=hidden.device)
        vocab = weight.shape[0]
        s.buffers = WorkBuffers(min(len(flat), _rows_per_block(vocab)), vocab, hidden.device)
        in_place = hidden.dtype == weight.dtype == torch.float32
        for rows in _blocks(len(flat), vocab):
            h = flat[rows]
            if in_place:  # the logits straight into a reused buffer
                out = s.buffers.get("z", h.shape[0])
                z = (torch.mm(h, weight.t(), out=out) if bias is None
                     else torch.addmm(bias, h, weight.t(), out=out))
            else:
                z = F.linear(h, weight, bias).float()
            teacher = [x[rows] for x in s.parts]
            y = None if labels is None else labels[rows]
            work: dict[str, Tensor] | None = {} if need_grad else None
            value, lse_t, lse_1, aux = _block_value(s, z, teacher, y, work)
            mask = keep[rows].to(torch.float32)
            total += (value * mask).sum().double()
            if need_grad:  # at once, from the exponentials the value has just made
                g = _block_grad(s, z, lse_t, lse_1, teacher, aux, y, work)
                del z
                g *= mask.unsqueeze(-1)
                torch.mm(g, w32, out=grad_h[rows])
                grad_w.addmm_(g.t(), h.float())
                if grad_b is not None:
                    grad_b += g.sum(0)
        s.buffers = None
        if need_grad:
            ctx.shapes = hidden.shape, hidden.dtype, weight.dtype
            ctx.save_for_backward(grad_h, grad_w, grad_b)
        return total.to(torch.float32)

    @staticmethod
    def backward(ctx: Any, grad_total: Tensor) -> tuple[Tensor | None, ...]:
        grad_h, grad_w, grad_b = ctx.saved_tensors
        shape, h_dtype, w_dtype = ctx.shapes
        scale = grad_total.to(torch.float32)
        dh = (grad_h * scale).reshape(shape).to(h_dtype) if ctx.needs_input_grad[3] else None
        dw = (grad_w * scale).to(w_dtype) if ctx.needs_input_grad[4] else None
        db = (grad_b * scale).to(w_dtype) if grad_b is not None else None
        return (None, None, None, dh, dw, db)[:len(ctx.needs_input_grad)]


class _FusedLogits(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, s: _Settings, keep: Tensor, labels: Tensor | None,
                logits: Tensor) -> Tensor:
        batch, positions, vocab = logits.shape
        stats = torch.zeros(3, batch, positions, dtype=torch.float32)  # lse_T, lse_1, aux
        total = torch.zeros((), dtype=torch.float64, device=logits.device)
        s.buffers = WorkBuffers(min(positions, _rows_per_block(vocab)), vocab, logits.device)
        for b in range(batch):
            for rows in _blocks(positions, vocab):
                teacher = [x[b][rows] for x in s.parts]
                y = None if labels is None else labels[b, rows]
                value, *block_stats = _block_value(s, logits[b, rows].float(), teacher, y)
                for i, stat in enumerate(block_stats):
                    if stat is not None:
                        stats[i, b, rows] = stat
                total += (value * keep[b, rows].to(torch.float32)).sum().double()
        s.buffers = None
        ctx.settings = s
        ctx.has_labels = labels is not None
        ctx.save_for_backward(logits, keep, stats, labels if labels is not None else keep)
        return total.to(torch.float32)

    @staticmethod
    def backward(ctx: Any, grad_total: Tensor) -> tuple[Tensor | None, ...]:
        logits, keep, stats, labels = ctx.saved_tensors
        s = ctx.settings
        grad = torch.empty_like(logits)
        scale = grad_total.to(torch.float32)
        s.buffers = WorkBuffers(min(logits.shape[1], _rows_per_block(logits.shape[2])),
                             logits.shape[2], logits.device)
        for b in range(logits.shape[0]):
            for rows in _blocks(logits.shape[1], logits.shape[2]):
                teacher = [x[b][rows] for x in s.parts]
                y = labels[b, rows] if ctx.has_labels else None
                lse_t, lse_1, aux = stats[0, b, rows], stats[1, b, rows], stats[2, b, rows]
                g = _block_grad(s, logits[b, rows].float(), lse_t, lse_1, teacher, aux, y)
                g *= keep[b, rows].to(torch.float32).unsqueeze(-1) * scale
                grad[b, rows] = g
        s.buffers = None
        return None, None, None, grad


def _block_value(s: _Settings, z: Tensor, teacher: list[Any], labels: Tensor | None,
                 work: dict[str, Tensor] | None = None
                 ) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    """Per row of one block: the blended loss, the student's log-normalisers at T and at 1,
    and the number the gradient needs (top-k: the student's tail log-mass; dense: the
    teacher's log-normaliser). ``work``, when given, receives the student's and the teacher's
    probabilities, for a gradient taken right after."""
    t = s.t
    z_t = torch.div(z, t, out=_buffer(s, "z_t", z)) if t != 1.0 else z
    top = z_t.amax(-1, keepdim=True)
    e = torch.sub(z_t, top, out=_buffer(s, "q", z)).exp_()  # the normaliser and top-k's tail
    lse_t = top.squeeze(-1) + e.sum(-1).log()
    lse_1 = lse_t if t == 1.0 else (z.logsumexp(-1) if s.alpha_ce > 0 else None)
    value = torch.zeros_like(lse_t)
    aux = None
    if s.kind != "none":
        kl, aux = _block_kl(s, z_t, e, lse_t, teacher, work)
        value += s.alpha * t * t * kl
    if work is not None:
        work["q"] = e.mul_((top.squeeze(-1) - lse_t).exp_().unsqueeze(-1))  # q_T, in place
    if s.alpha_ce > 0 and labels is not None:
        y = labels.long().clamp(0, z.shape[-1] - 1).unsqueeze(-1)  # ignored rows: masked
        value += s.alpha_ce * (lse_1 - z.gather(-1, y).squeeze(-1))
    return value, lse_t, lse_1, aux


def _block_kl(s: _Settings, z_t: Tensor, e: Tensor, lse: Tensor, teacher: list[Tensor],
              work: dict[str, Tensor] | None) -> tuple[Tensor, Tensor | None]:
    """KL(p_T ‖ q_T) per row: ``z_t`` are the student's logits over T and ``e`` their
    exponentials less the row maximum (left as they were)."""
    kind, t = s.kind, s.t
    if kind == "sampled":  # −H(p_T) − mean_j log q_T(x_j)
        ids, entropy = teacher
        return lse - z_t.gather(-1, ids.long()).mean(-1) - entropy.float(), None
    if kind == "weighted":  # −H(p_T) − Σ_j w_j log q_T(x_j), the weights summing to one
        ids, entropy, w = teacher
        return lse - (z_t.gather(-1, ids.long()) * w.float()).sum(-1) - entropy.float(), None
    if kind == "dense":  # Σ p̃·(x − z/T) / Σ p̃ − log Σ p̃ + log Z_q, x = t/T − max, p̃ = e^x
        x = _buffer(s, "teacher", z_t).copy_(teacher[0])  # widened once; in place from here
        top = x.amax(-1, keepdim=True)
        x.sub_(top)
        if t != 1.0:
            x.div_(t)
            top = top / t
        x.clamp_(min=-1e4)  # exp underflows long before: no 0·(−inf) below
        p = torch.exp(x, out=_buffer(s, "p", z_t))  # unnormalised
        total = p.sum(-1)
        log_total = total.log()
        kl = x.sub_(z_t).mul_(p).sum(-1) / total - log_total + lse
        if work is not None:
            work["p"], work["p_total"] = p, total
        return kl, top.squeeze(-1) + log_total  # the teacher's log-normaliser
    ids, log_pb = teacher  # top-k: k kept tokens and the teacher's k + 1 bucket log-probs
    idx = ids.long()
    all_mass, kept = e.sum(-1), e.gather(-1, idx)
    e.scatter_(-1, idx, 0.0)  # the tail's mass summed directly: no 1 − kept cancellation
    log_q_rest = (e.sum(-1) / all_mass).log().clamp(min=_LOG_FLOOR)
    e.scatter_(-1, idx, kept)
    log_q = torch.cat([z_t.gather(-1, idx) - lse.unsqueeze(-1), log_q_rest.unsqueeze(-1)], -1)
    p = log_pb.float().exp()
    safe_log_p = torch.where(p > 0, log_pb.float(), torch.zeros_like(p))
    return (p * (safe_log_p - log_q.clamp(min=_LOG_FLOOR))).sum(-1), log_q_rest


def _block_grad(s: _Settings, z: Tensor, lse_t: Tensor, lse_1: Tensor | None,
                teacher: list[Any], aux: Tensor | None, labels: Tensor | None,
                work: dict[str, Tensor] | None = None) -> Tensor:
    """``kd·(q_T − p̂) + alpha_ce·(q_1 − onehot(y))`` for the rows of one block, in float32."""
    t, kd, alpha_ce, kind = s.t, s.kd, s.alpha_ce, s.kind
    work = work or {}
    if "q" in work:
        g = work["q"]
    else:
        g = torch.div(z, t, out=_buffer(s, "q", z)) if t != 1.0 else _buffer(s, "q", z).copy_(z)
        g.sub_(lse_t.unsqueeze(-1)).exp_()  # q_T
    shared = t == 1.0 and kind != "topk"  # q_1 = q_T: one exp serves both terms
    if kind == "none":
        if not shared:
            g.zero_()
    elif kind == "sampled":
        ids, n = teacher[0].long(), teacher[0].shape[-1]
        g *= kd + (alpha_ce if shared else 0.0)
        g.scatter_add_(-1, ids, torch.full(ids.shape, -kd / n, dtype=g.dtype, device=g.device))
    elif kind == "weighted":
        g *= kd + (alpha_ce if shared else 0.0)
        g.scatter_add_(-1, teacher[0].long(), teacher[2].float() * -kd)
    elif kind == "dense":
        g *= kd + (alpha_ce if shared else 0.0)
        if "p" in work:  # unnormalised: g −= kd · p̃ / Σ p̃ in one pass
            g.addcmul_(work["p"], (-kd / work["p_total"]).unsqueeze(-1))
        else:  # the teacher's p_T from its log-normaliser
            p = _buffer(s, "p", z).copy_(teacher[0])
            if t != 1.0:
                p.div_(t)
            g.sub_(p.sub_(aux.unsqueeze(-1)).exp_(), alpha=kd)
    else:  # top-k buckets
        idx, p = teacher[0].long(), teacher[1].float().exp()
        q_kept = g.gather(-1, idx)
        # tail tokens: q_i · (1 − p_rest / q_rest); a tail floored as impossible has no grad
        ratio = torch.where(aux > _LOG_FLOOR, p[..., -1] / aux.exp(), torch.zeros_like(aux))
        g *= (1.0 - ratio).unsqueeze(-1)
        g.scatter_(-1, idx, q_kept - p[..., :-1])
        g *= kd
    if alpha_ce > 0 and labels is not None:
        if kind == "none" and shared:
            g *= alpha_ce
        elif not shared:
            g += alpha_ce * (z - lse_1.unsqueeze(-1)).exp_()
        y = labels.long().clamp(0, z.shape[-1] - 1).unsqueeze(-1)
        g.scatter_add_(-1, y, torch.full(y.shape, -alpha_ce, dtype=g.dtype, device=g.device))
    return g
