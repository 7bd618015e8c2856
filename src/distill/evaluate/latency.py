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
) -> dict[str, dict[int, dict[str, float]]]:
    """Milliseconds per forward pass, per model and batch size, on the CPU.

    Models are measured in alternating rounds so that a slower or faster phase of a shared
    machine affects all of them alike; the ratios between them are what to trust. Each round
    starts with two untimed calls (the model and batch size just changed, so caches and the
    runtime's buffers are cold): the numbers are steady-state latency, as a service answering
    a stream of requests sees it.
    """
    inputs = {bs: example_batch(data, bs) for bs in batch_sizes}
    samples: dict[str, dict[int, list[float]]] = {n: {bs: [] for bs in batch_sizes} for n in models}
    rounds = max(1, min(rounds, repeats))
    per_round = [repeats // rounds + (1 if r < repeats % rounds else 0) for r in range(rounds)]
    modes = {name: m.training for name, m in models.items()}
    for m in models.values():
        m.eval()
    try:
        with thread_count(threads):
            for model in models.values():
                for bs in batch_sizes:
                    for _ in range(warmup):
                        forward(model, inputs[bs])
            for runs in per_round:
                for name, model in models.items():
                    for bs in batch_sizes:
                        for _ in range(ROUND_WARMUP):
                            forward(model, inputs[bs])
                        for _ in range(runs):
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
