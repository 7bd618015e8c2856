"""Held-out quality of a causal LM: perplexity, and how far it is from its teacher."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from distill.batches import Batches, to_device
from distill.data.base import NO_LABEL
from distill.lm.heads import logits_at, read_outputs
from distill.losses.divergences import divergence

ECE_BINS = 15


def _add_to_bins(bins: torch.Tensor, log_q: torch.Tensor, labels: torch.Tensor) -> None:
    """Add the positions' confidence and correctness to their bins, ``(lo, hi]`` as
    :func:`distill.evaluate.expected_calibration_error` bins them."""
    top, predicted = log_q.max(-1)
    confidence = top.exp().double()
    where = (confidence * ECE_BINS).ceil().long().clamp(1, ECE_BINS) - 1
    bins[0].index_add_(0, where, torch.ones_like(confidence))
    bins[1].index_add_(0, where, confidence)
    bins[2].index_add_(0, where, (predicted == labels).double())


@torch.inference_mode()
def lm_metrics(
    model: nn.Module,
    data: Any,
    *,
    teacher: Any = None,
    batch_size: int = 8,
    chunk_size: int = 128,
    device: str = "cpu",
) -> dict[str, float]:
    """Perplexity over the positions that carry a label, and the calibration of the next-token
    prediction (``ece``: |accuracy − confidence| of the most likely token over 15 equal-width
    confidence bins, weighted by bin size); with ``teacher``, also the mean forward
    KL(teacher ‖ model) per token and top-1 agreement. Logits are made ``chunk_size``
    positions at a time, so a 50k vocabulary never fills memory. ``teacher`` is a module or a
    teacher signal (e.g. a :class:`~distill.CachedTeacher` built on ``data``)."""
    was_training = model.training
    model.eval().to(device)
    if isinstance(teacher, nn.Module):
        teacher.eval().to(device)
    nll, kl, agree, tokens = 0.0, 0.0, 0, 0
    bins = torch.zeros(3, ECE_BINS, dtype=torch.float64)  # count, confidence, correct per bin
    try:
        for batch in Batches(data, batch_size, shuffle=False):
            if batch.labels is None:
                raise ValueError("perplexity needs labels (the next tokens); got a batch without")
            inputs = to_device(batch.inputs, device)
            labels = batch.labels.to(device)
            out = read_outputs(model, inputs)
            ref = None
            if isinstance(teacher, nn.Module):
                ref = read_outputs(teacher, inputs)
            elif teacher is not None:
                ref = teacher.logits(inputs, batch.indices)
            for start in range(0, labels.shape[1], chunk_size):
                sl = slice(start, start + chunk_size)
                keep = labels[:, sl] != NO_LABEL
                if not bool(keep.any()):
                    continue
                log_q = F.log_softmax(logits_at(out, sl).float(), -1)[keep]
                nll -= float(log_q.gather(-1, labels[:, sl][keep].unsqueeze(-1)).sum())
                tokens += int(keep.sum())
                _add_to_bins(bins, log_q, labels[:, sl][keep])
                if ref is not None:
                    log_p = F.log_softmax(logits_at(ref, sl).float(), -1)[keep]
                    kl += float(divergence(log_p, log_q, "forward_kl").sum())
                    agree += int((log_p.argmax(-1) == log_q.argmax(-1)).sum())
    finally:
        model.train(was_training)
    if tokens == 0:
        raise ValueError("no labeled positions to evaluate (every label is -100)")
    count, confidence, correct = bins
    ece = float(((correct - confidence).abs()).sum() / count.sum())
    scores = {"perplexity": math.exp(nll / tokens), "nll": nll / tokens, "tokens": tokens,
              "ece": ece}
    if teacher is not None:
        scores.update(kl_to_teacher=kl / tokens, agreement=agree / tokens)
    return scores
