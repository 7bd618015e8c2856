"""Token-level distillation of causal language models, in chunks of positions.

For each position the student's next-token distribution is pulled towards the teacher's by a
chosen divergence (forward KL, reverse KL or the generalized JSD of GKD), optionally blended
with cross-entropy on the text's own next tokens. Positions labeled ``ignore_index`` (prompt
and padding) count in neither term.

Memory: with ``chunk_size`` set, models that expose their hidden states and head (Hugging
Face causal LMs) hand the loss hidden states instead of logits. For the forward KL and plain
cross-entropy (``fused=True``, the default) with a linear head, the loss then makes, scores
and differentiates the logits a block of positions at a time
(:mod:`distill.losses.fused_token`): no full logits tensor exists and nothing is recomputed.
For reverse KL and JSD the loss makes the logits of ``chunk_size`` positions at a time and
recomputes them in the backward pass (activation checkpointing per chunk): a step then peaks at
about 14 float32 ``batch × chunk × vocabulary`` tensors' worth (BENCHMARKS.md), at ~20% more
step time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from distill.batches import forward
from distill.lm.heads import HiddenStates, logits_at, read_outputs
from distill.losses.base import DistillationLoss
from distill.losses.divergences import Divergence, check_beta, divergence, divergence_name
from distill.losses.fused_token import fused_linear_token_loss, fused_token_loss, linear_head
from distill.losses.topk import fold_onto_buckets
from distill.teachers.sampled import SampledTargets
from distill.teachers.targets import TopKTargets

Outputs = Tensor | HiddenStates
Sparse = TopKTargets | SampledTargets


def _positions(value: Outputs | Sparse, sl: slice, grad: bool) -> Tensor | Sparse:
    """The logits (or sparse targets) of positions ``sl``: made from hidden states if needed."""
    if isinstance(value, SampledTargets):
        return value.positions(sl)
    if isinstance(value, TopKTargets):
        return TopKTargets(value.indices[:, sl], value.logits[:, sl], value.rest[:, sl],
                           value.vocab_size)
    with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
        return logits_at(value, sl)


class TokenKDLoss(DistillationLoss):
    """``alpha · T² · D(teacher_T, student_T) + (1 − alpha) · CE(student, next tokens)``.

    Args:
        divergence: ``"forward_kl"`` (Hinton's KD), ``"reverse_kl"`` or ``"jsd"`` (also by
            the usual names: ``"forward"``, ``"reverse"``, ``"kl"``, ``"rkl"``, ``"js"``, …).
        beta: the generalized JSD's mixing weight, strictly inside (0, 1).
        temperature: softens both distributions; ``T²`` keeps gradient scales comparable.
        alpha: weight of the divergence; ``1 - alpha`` goes to cross-entropy on labels.
        chunk_size: positions per chunk (``None``: one pass over full logits, the reference).
        ignore_index: the label of positions that do not count (prompt, padding).
        fused: the forward KL (and plain cross-entropy) through
            :func:`~distill.losses.fused_token.fused_token_loss`, whose closed-form backward
            holds one logits-sized tensor instead of several; ``False`` keeps the autograd
            formulation, the reference it is tested against.

    Logits are ``(batch, sequence, vocabulary)``; labels ``(batch, sequence)`` are the next
    tokens, already shifted. The teacher may also be sparse top-k targets from a cache.
    """

    def __init__(
        self,
        divergence: Divergence = "forward_kl",
        *,
        beta: float = 0.5,
        temperature: float = 1.0,
        alpha: float = 1.0,
        chunk_size: int | None = 128,
        ignore_index: int = -100,
        fused: bool = True,
    ):
        super().__init__()
        divergence = divergence_name(divergence)  # type: ignore[assignment]
        if divergence == "jsd":
            check_beta(beta)
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be within [0, 1], got {alpha}")
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive number of positions or None, "
                             f"got {chunk_size}")
        self.divergence, self.beta = divergence, float(beta)
        self.temperature, self.alpha = float(temperature), float(alpha)
        self.chunk_size, self.ignore_index = chunk_size, ignore_index
        self.fused = bool(fused)

    def outputs(self, model: nn.Module, inputs: Tensor | Mapping[str, Any]) -> Outputs:
        """Hidden states when chunking a model that exposes them; full logits otherwise."""
        return read_outputs(model, inputs) if self.chunk_size is not None else forward(model,
                                                                                       inputs)

    def check_models(self, student: nn.Module, teacher: nn.Module | None) -> None:
        from distill.lm.tokenizers import model_differences

        if teacher is None or self.alpha == 0:
            return
        differences = model_differences(teacher, student)
        if differences:
            raise ValueError(
                "teacher and student must share one tokenizer for token-level distillation; "
                + "; ".join(differences)
            )

    def forward(
        self,
        student_logits: Outputs,
        teacher_logits: Outputs | TopKTargets | None,
        labels: Tensor | None = None,
    ) -> Tensor:
        if teacher_logits is None and self.alpha > 0:
            raise ValueError("TokenKDLoss needs the teacher's outputs (or alpha=0 for pure CE)")
        _check_shapes(student_logits, teacher_logits, labels)
        batch, length = student_logits.shape[0], student_logits.shape[1]
        if labels is None:
            keep = torch.ones(batch, length, dtype=torch.bool, device=_device(student_logits))
        else:
            keep = labels != self.ignore_index
        count = keep.sum()
        if int(count) == 0:
            return _device_zero(student_logits)
        if self._fusable() and isinstance(student_logits, HiddenStates) and linear_head(
                student_logits.head):  # logits made, scored and differentiated block by block
            target = teacher_logits if self.alpha > 0 else None
            if isinstance(target, SampledTargets):
                self._check_sampled(target)
            return fused_linear_token_loss(student_logits.hidden, student_logits.head, target,
                                           labels, keep, temperature=self.temperature,
                                           alpha=self.alpha) / count
        step = self.chunk_size or length
        total = _device_zero(student_logits)
        for start in range(0, length, step):
            sl = slice(start, min(start + step, length))
            chunk_labels = None if labels is None else labels[:, sl]
            if self.chunk_size is None or not torch.is_grad_enabled():
                total = total + self._chunk(student_logits, teacher_logits, chunk_labels,
                                            keep[:, sl], sl)
            else:  # recompute this chunk's logits in backward instead of keeping them
                total = total + checkpoint(self._chunk, student_logits, teacher_logits,
                                           chunk_labels, keep[:, sl], sl, use_reentrant=False)
        return total / count

    def _chunk(self, student: Outputs, teacher: Any, labels: Tensor | None, keep: Tensor,
               sl: slice) -> Tensor:
        """Sum over the kept positions of ``sl`` of the blended loss."""
        if self._fusable():
            target = _positions(teacher, sl, grad=False) if self.alpha > 0 else None
            if isinstance(target, SampledTargets):
                self._check_sampled(target)
            return fused_token_loss(_positions(student, sl, grad=True), target, labels, keep,
                                    temperature=self.temperature, alpha=self.alpha)
        s_logits = _positions(student, sl, grad=True).float()
        total = s_logits.new_zeros(())
        flat_keep = keep.reshape(-1)
        if self.alpha > 0:
            t = self.temperature
            log_q = F.log_softmax(s_logits / t, dim=-1).reshape(-1, s_logits.shape[-1])
            target = _positions(teacher, sl, grad=False)
            if isinstance(target, SampledTargets):
                self._check_sampled(target)
                per_position = target.detach().forward_kl(log_q)[flat_keep]
                return total + self.alpha * t * t * per_position.sum() + self._ce(
                    s_logits, labels, flat_keep)
            if isinstance(target, TopKTargets):
                target = target.detach()
                log_p = target.bucket_log_probs(t).reshape(-1, target.k + 1)
                log_q = fold_onto_buckets(log_q, target.indices.reshape(-1, target.k))
            else:
                log_p = F.log_softmax(target.detach().float() / t, dim=-1).reshape(log_q.shape)
            per_position = divergence(log_p[flat_keep], log_q[flat_keep], self.divergence,
                                      self.beta)
            total = total + self.alpha * t * t * per_position.sum()
        return total + self._ce(s_logits, labels, flat_keep)

    def _fusable(self) -> bool:
        return self.fused and (self.divergence == "forward_kl" or self.alpha == 0)

    def _ce(self, s_logits: Tensor, labels: Tensor | None, flat_keep: Tensor) -> Tensor:
        """``(1 − alpha)`` × the summed cross-entropy on the next tokens of kept positions."""
        if self.alpha >= 1 or labels is None:
            return s_logits.new_zeros(())
        ce = F.cross_entropy(s_logits.reshape(-1, s_logits.shape[-1])[flat_keep],
                             labels.reshape(-1)[flat_keep].long(), reduction="sum")
        return (1.0 - self.alpha) * ce

    def _check_sampled(self, target: SampledTargets) -> None:
        if self.divergence != "forward_kl":
            raise ValueError(f"sampled teacher targets estimate the forward KL only; this loss "
                             f"uses {self.divergence!r} (use divergence='forward', or top-k or "
                             "dense targets)")
        if abs(target.temperature - self.temperature) > 1e-6:
            raise ValueError(f"the targets were sampled at temperature {target.temperature}; "
                             f"the loss uses {self.temperature}: they must be the same")

    def extra_repr(self) -> str:
        beta = f", beta={self.beta}" if self.divergence == "jsd" else ""
        return (f"divergence={self.divergence!r}{beta}, temperature={self.temperature}, "
                f"alpha={self.alpha}, chunk_size={self.chunk_size}, fused={self.fused}")


def _device(value: Outputs) -> torch.device:
    return value.hidden.device if isinstance(value, HiddenStates) else value.device


def _device_zero(value: Outputs) -> Tensor:
    """A zero that keeps the graph connected, so ``backward()`` works on an all-masked batch."""
    if isinstance(value, HiddenStates):
        return value.hidden.sum() * 0.0
    return value.sum() * 0.0


def _check_shapes(student: Outputs, teacher: Any, labels: Tensor | None) -> None:
    s = tuple(student.shape)
    if len(s) != 3:
        raise ValueError(
            f"token-level distillation needs (batch, sequence, vocabulary) outputs; the student "
            f"gave shape {s}"
        )
    if teacher is not None:
        t = tuple(teacher.shape)
        if t[-1] != s[-1]:
            raise ValueError(
                f"the teacher's vocabulary has {t[-1]} tokens and the student's {s[-1]}: "
                "teacher and student must share one tokenizer "
                "(distill.lm.check_same_tokenizer says what differs)"
            )
        if t[:2] != s[:2]:
            raise ValueError(f"teacher outputs cover (batch, sequence) {t[:2]} but the "
                             f"student's cover {s[:2]}")
    if labels is not None and tuple(labels.shape) != s[:2]:
        raise ValueError(
            f"labels of shape {tuple(labels.shape)} do not match the student's (batch, sequence) "
            f"{s[:2]}: labels are the next tokens, one per position"
        )
