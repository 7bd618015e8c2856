"""Soft-target KL against sparse top-k teacher targets, without a vocabulary-sized teacher tensor.

The student's full distribution is folded onto the teacher's k + 1 buckets (its k kept entries
and everything else), and the KL is taken between the two bucket distributions. With k equal
to the number of classes this is exactly the dense KL; with fewer it is a lower bound on it
(merging outcomes never increases a KL divergence), exact on the kept entries.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from distill.losses.base import masked_mean
from distill.losses.divergences import divergence
from distill.teachers.targets import TopKTargets


def fold_onto_buckets(log_q: Tensor, indices: Tensor) -> Tensor:
    """The student's log-probabilities ``(..., vocabulary)`` folded onto the teacher's k kept
    entries and one bucket for everything else: ``(..., k + 1)``.

    The leftover bucket is the log-sum-exp of the entries not kept, not ``log(1 - kept)``: the
    subtraction loses every digit when the kept entries hold nearly all of the mass.
    """
    index = indices.long()
    kept = log_q.gather(-1, index)
    if index.shape[-1] == log_q.shape[-1]:  # every entry kept: the tail holds exactly nothing
        return torch.cat([kept, torch.full_like(kept[..., :1], -math.inf)], dim=-1)
    tail = log_q.scatter(-1, index, -math.inf).logsumexp(-1, keepdim=True)
    return torch.cat([kept, tail], dim=-1)


def topk_soft_target_kl(
    student_logits: Tensor, targets: TopKTargets, temperature: float, mask: Tensor | None = None
) -> Tensor:
    """Mean over positions of KL(teacher buckets at T || student buckets at T), in float32."""
    classes = student_logits.shape[-1]
    k = targets.k
    log_q = F.log_softmax(student_logits.reshape(-1, classes).float() / temperature, dim=-1)
    log_q_buckets = fold_onto_buckets(log_q, targets.indices.reshape(-1, k))
    log_p = targets.detach().bucket_log_probs(temperature).reshape(-1, k + 1)
    return masked_mean(divergence(log_p, log_q_buckets, "forward_kl"), mask)
