"""What one AdamW step costs on a CPU: torch's per-tensor loop, its foreach form, its fused kernel.

Parameters shaped as the half-size SmolLM2 width cut (a 49,152 × 576 embedding and 30 blocks,
67,226,112 parameters), random gradients; process time of the median of 5 steps after one
untimed step, one thread (the machine may be shared: process time is what the step used).

    python benchmarks/optimizer_step.py
"""

from __future__ import annotations

import time

import torch

BLOCK = [(576, 576), (192, 576), (192, 576), (576, 576), (238, 576), (238, 576), (576, 238),
         (576,), (576,)]
SHAPES = [(49152, 576)] + BLOCK * 30
KINDS = {"loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}


def step_seconds(options: dict[str, bool], repeats: int = 5) -> float:
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s) * 0.02) for s in SHAPES]
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    optimizer = torch.optim.AdamW(params, lr=1e-3, weight_decay=5e-4, **options)
    optimizer.step()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        optimizer.step()
        times.append(time.process_time() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    torch.set_num_threads(1)
    count = sum(torch.Size(s).numel() for s in SHAPES)
    found = {kind: step_seconds(options) for kind, options in KINDS.items()}
    print(f"{count:,} parameters, 1 thread, torch {torch.__version__}")
    for kind, seconds in found.items():
        print(f"{kind:8s} {1000 * seconds:6.0f} ms  ({seconds / found['fused']:.1f}x fused)")


if __name__ == "__main__":
    main()
