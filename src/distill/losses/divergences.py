"""Divergences between the teacher's and the student's next-token distributions, per position.

* forward KL, KL(p‖q): mass-covering; the student spreads over everything the teacher allows.
* reverse KL, KL(q‖p): mode-seeking; the student commits to what the teacher finds likely
  (MiniLLM's argument for generative students).
* generalized Jensen–Shannon with β (GKD, Agarwal et al. 2024):
  ``β·KL(p‖m) + (1−β)·KL(q‖m)`` with ``m = β·p + (1−β)·q``; bounded, and β moves it between
  the two KLs (divided by β it tends to forward KL as β→0; divided by 1−β, to reverse KL as
  β→1). The end points themselves are zero, so β must lie strictly inside (0, 1).

All are taken on log-probabilities in float32 over one shared support: the whole vocabulary,
or the k + 1 buckets of sparse top-k teacher targets.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

Divergence = Literal["forward_kl", "reverse_kl", "jsd"]
DIVERGENCES: tuple[str, ...] = ("forward_kl", "reverse_kl", "jsd")
# the names the papers and our own prose use for them
ALIASES = {
    "forward": "forward_kl", "forward-kl": "forward_kl", "fkl": "forward_kl", "kl": "forward_kl",
    "reverse": "reverse_kl", "reverse-kl": "reverse_kl", "rkl": "reverse_kl",
    "js": "jsd", "jensen-shannon": "jsd", "gkd": "jsd",
}


def divergence_name(name: str) -> str:
    """The canonical name of a divergence or one of its aliases (case and ``-``/``_`` free)."""
    key = str(name).strip().lower()
    for candidate in (key, key.replace("-", "_"), key.replace("_", "-")):
        if candidate in DIVERGENCES:
            return candidate
        if candidate in ALIASES:
            return ALIASES[candidate]
    raise ValueError(f"unknown divergence {name!r}; choose one of {', '.join(DIVERGENCES)} "
                     f"(also accepted: {', '.join(sorted(ALIASES))})")


# log-probabilities are floored here: an outcome one side calls impossible (a top-k teacher
# whose dropped mass rounded to zero) costs a large finite amount, not an infinite loss
_LOG_FLOOR = -100.0


def _kl(log_a: Tensor, log_b: Tensor) -> Tensor:
    """KL(a‖b) along the last dimension; outcomes ``a`` gives no mass add nothing (no NaN)."""
    a = log_a.exp()
    safe_log_a = torch.where(a > 0, log_a, torch.zeros_like(log_a))
    return (a * (safe_log_a - log_b.clamp(min=_LOG_FLOOR))).sum(-1)


def divergence(
    log_p: Tensor, log_q: Tensor, kind: Divergence = "forward_kl", beta: float = 0.5
) -> Tensor:
    """Per-position divergence of teacher ``log_p`` and student ``log_q`` (same shape)."""
    if kind == "forward_kl":
        return _kl(log_p, log_q)
    if kind == "reverse_kl":
        return _kl(log_q, log_p)
    if kind == "jsd":
        check_beta(beta)
        # log m = logsumexp(log β + log p, log(1−β) + log q), stable for tiny probabilities
        log_m = torch.logaddexp(log_p + math.log(beta), log_q + math.log1p(-beta))
        return beta * _kl(log_p, log_m) + (1.0 - beta) * _kl(log_q, log_m)
    raise ValueError(f"unknown divergence {kind!r}; choose one of {', '.join(DIVERGENCES)}")


def check_beta(beta: float) -> None:
    if not 0.0 < beta < 1.0:
        raise ValueError(
            f"the generalized JSD needs 0 < beta < 1, got {beta}; at the end points it is zero "
            "(use divergence='forward_kl' or 'reverse_kl' for the limits)"
        )
