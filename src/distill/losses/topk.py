"""Soft-target KL against sparse top-k teacher targets, without a vocabulary-sized teacher tensor.

The student's full distribution is folded onto the teacher's k + 1 buckets (its k kept entries
and everything else), and the KL is taken between the two bucket distributions. With k equal
to the number of classes this is exactly the dense KL; with fewer it is a lower bound on it
(merging outcomes never increases a KL divergence), exact on the kept entries.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from distill.losses.base import masked_mean
from distill.teachers.targets import TopKTargets


def topk_soft_target_kl(
    student_logits: Tensor, targets: TopKTargets, temperature: float, mask: Tensor | None = None
) -> Tensor:
    """Mean over positions of KL(teacher buckets at T || student buckets at T), in float32."""
    classes = student_logits.shape[-1]
    k = targets.k
    log_q = F.log_softmax(student_logits.reshape(-1, classes).float() / temperature, dim=-1)
    kept = log_q.gather(-1, targets.indices.reshape(-1, k).long())
    # log(1 - sum(q_kept)), clamped: when the kept entries hold all the mass the tail is empty
    kept_mass = kept.logsumexp(-1).clamp(max=-1e-7)
    tail = torch.log(-torch.expm1(kept_mass))
    log_q_buckets = torch.cat([kept, tail.unsqueeze(-1)], dim=-1)
    log_p = targets.detach().bucket_log_probs(temperature).reshape(-1, k + 1)
    p = log_p.exp()
    # buckets the teacher gives no mass add nothing (0 * log 0 = 0), and no NaN either
    log_p = torch.where(p > 0, log_p, torch.zeros_like(log_p))
    per_position = (p * (log_p - log_q_buckets)).sum(-1)
    return masked_mean(per_position, mask)
