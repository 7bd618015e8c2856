"""CPU latency measured honestly: fixed threads, warm-up, interleaved models, medians and p95."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from distill.batches import Batches, Inputs, batch_size_of, forward
from distill.runtime import thread_count


def example_batch(data, batch_size: int) -> Inputs:
    """The first ``batch_size`` inputs of ``data`` (repeated if the dataset is smaller)."""
    batch = next(iter(Batches(data, batch_size, shuffle=False)))
    inputs = batch.inputs
    have = batch_size_of(inputs)
    if have < batch_size:
        reps = -(-batch_size // have)

        def grow(t: Any) -> Any:
            if isinstance(t, Tensor):
                return t.repeat(reps, *([1] * (t.dim() - 1)))[:batch_size]
            return t

        if isinstance(inputs, Tensor):
            inputs = grow(inputs)
        else:
            inputs = {k: grow(v) for k, v in inputs.items()}
    return inputs


ROUND_WARMUP = 2  # untimed calls when a round switches model or batch size
MIN_RUNS = 5  # a median and a p95 need a few runs, however slow the model
WARMUP_BUDGET_S = 1.0  # warm-up calls stop after about this long (at least one)
SLOW_CALL_S = 0.1  # one untimed call warms a call this slow: its caches are not the question


def _plan(one_call_s: float, warmup: int, repeats: int,
          budget_s: float | None) -> tuple[int, int, int]:
    """(warm-up calls, timed runs, untimed calls per round) for a model whose call takes
    ``one_call_s``: within ``budget_s`` of timed runs, never fewer than ``MIN_RUNS``."""
    if budget_s is None:
        return warmup, repeats, ROUND_WARMUP
    fit = int(budget_s / max(one_call_s, 1e-9))
    warm = min(warmup, max(1, int(WARMUP_BUDGET_S / max(one_call_s, 1e-9))))
    runs = min(repeats, max(MIN_RUNS, fit))
    return warm, runs, ROUND_WARMUP if one_call_s < SLOW_CALL_S else 1


def _split(total: int, rounds: int) -> list[int]:
    return [total // rounds + (1 if r < total % rounds else 0) for r in range(rounds)]


@torch.inference_mode()
def measure_latency(
    models: Mapping[str, nn.Module],
    data,
    *,
    batch_sizes: Sequence[int] = (1, 64),
    threads: int = 1,
    warmup: int = 10,
    repeats: int = 50,
    rounds: int = 5,
    budget_s: float | None = 5.0,
) -> dict[str, dict[int, dict[str, float]]]:
    """Milliseconds per forward pass, per model and batch size, on the CPU.

    Models are measured in alternating rounds so that a slower or faster phase of a shared
    machine affects all of them alike; the ratios between them are what to trust. Each round
    starts with two untimed calls (the model and batch size just changed, so caches and the
    runtime's buffers are cold): the numbers are steady-state latency, as a service answering
    a stream of requests sees it.

    ``repeats`` is at most: a slow model (a language model on long blocks at batch 64) stops
    after about ``budget_s`` seconds of timed runs per batch size, never under ``MIN_RUNS``,
    and warms up for about a second; each result's ``runs`` says how many were timed.
    ``budget_s=None`` times every repeat.
    """
    inputs = {bs: example_batch(data, bs) for bs in batch_sizes}
    samples: dict[str, dict[int, list[float]]] = {n: {bs: [] for bs in batch_sizes} for n in models}
    rounds = max(1, min(rounds, repeats))
    plans: dict[tuple[str, int], tuple[int, list[int]]] = {}
    modes = {name: m.training for name, m in models.items()}
    for m in models.values():
        m.eval()
    try:
        with thread_count(threads):
            for name, model in models.items():
                for bs in batch_sizes:
                    start = time.perf_counter()
                    forward(model, inputs[bs])  # the first warm-up call, timed to plan the rest
                    warm, runs, round_warm = _plan(time.perf_counter() - start, warmup,
                                                   repeats, budget_s)
                    for _ in range(warm - 1):
                        forward(model, inputs[bs])
                    plans[name, bs] = (round_warm, _split(runs, rounds))
            for r in range(rounds):
                for name, model in models.items():
                    for bs in batch_sizes:
                        round_warm, per_round = plans[name, bs]
                        if not per_round[r]:
                            continue
                        for _ in range(round_warm):
                            forward(model, inputs[bs])
                        for _ in range(per_round[r]):
                            start = time.perf_counter()
                            forward(model, inputs[bs])
                            samples[name][bs].append((time.perf_counter() - start) * 1e3)
    finally:
        for name, m in models.items():
            m.train(modes[name])
    return {
        name: {
            bs: {
                "p50": float(np.median(times)),
                "p95": float(np.percentile(times, 95)),
                "runs": len(times),
            }
            for bs, times in per_bs.items()
        }
        for name, per_bs in samples.items()
    }
