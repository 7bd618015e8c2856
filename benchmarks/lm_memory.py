"""Peak memory of one token-level distillation step: logits in chunks against in one piece.

The teacher is SmolLM2-135M-Instruct (vocabulary 49,152) and the student the 2-layer llama of
the language-model benchmarks; one step is what the engine does per batch: the teacher's
outputs without gradients, the student's, the loss, the backward pass. Each setting runs in a
fresh process, with glibc told to return freed blocks to the kernel at once; after a warm-up
step the kernel's resident-memory high-water mark is reset (``/proc/self/clear_refs``), so the
peak read after the measured step, less the memory resident before it, is that step's own.

    python benchmarks/lm_memory.py                       # batch 8 x 256 tokens
    python benchmarks/lm_memory.py --length 512 --out benchmarks/results/lm_memory_512.json

Set-up as for the other language-model benchmarks (make bench-lm).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from jobs import machine, resident_mib, timed_steps, write_record  # noqa: E402

DIVERGENCE = "jsd"  # the heaviest of the three: both distributions and their mixture
# glibc keeps freed heap memory for reuse, which would hide a step's allocations behind what
# the warm-up step left resident; fixed thresholds hand large blocks back to the kernel at once
CHILD_ENV = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}


def measure(chunk: int | None, batch: int, length: int, repeats: int) -> dict:
    """One setting, in this process: step seconds and the step's peak memory above baseline."""
    from lm_data import build_student, load_smollm2, shakespeare, token_blocks

    import distill

    torch.set_num_threads(1)
    teacher, tokenizer = load_smollm2()
    student = build_student(teacher.config.vocab_size, seed=0).train()
    text = "\n".join(list(shakespeare().values())[:3])
    blocks = token_blocks(tokenizer, [text], length, limit=batch)
    inputs, labels = {"input_ids": blocks[:, :-1]}, blocks[:, 1:]
    loss = distill.TokenKDLoss(DIVERGENCE, chunk_size=chunk)

    def step() -> None:
        with torch.no_grad():
            target = loss.outputs(teacher, inputs)
        value = loss(loss.outputs(student, inputs), target, labels)
        value.backward()
        student.zero_grad(set_to_none=True)

    seconds, peaks = timed_steps(step, repeats)
    baseline = resident_mib("VmRSS")
    return {"chunk_size": chunk, "step_seconds": statistics.median(seconds),
            "peak_mib": statistics.median(peaks), "baseline_mib": baseline}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--chunks", type=int, nargs="+", default=[0, 128, 32],
                        help="positions per chunk; 0 = one piece")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # the child process
    parser.add_argument("--out", type=Path, default=HERE / "results" / "lm_memory.json")
    args = parser.parse_args(argv)
    if args.one is not None:
        print(json.dumps(measure(args.one or None, args.batch, args.length, args.repeats)))
        return 0
    started = time.perf_counter()
    rows = []
    for chunk in args.chunks:  # a fresh process each: no setting inherits another's pools
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(chunk), "--batch", str(args.batch),
             "--length", str(args.length), "--repeats", str(args.repeats)],
            check=True, capture_output=True, text=True, env=CHILD_ENV,
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    vocab = 49152
    logits_mib = args.batch * args.length * vocab * 4 / 2**20
    table = ["| logits made | peak memory of a step | step time |", "|---|---:|---:|"]
    for row in rows:
        name = (f"in chunks of {row['chunk_size']} positions" if row["chunk_size"]
                else "in one piece (full logits)")
        table.append(f"| {name} | {row['peak_mib']:,.0f} MiB | {row['step_seconds']:.2f} s |")
    record = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(1),
        "batch": args.batch, "length": args.length, "divergence": DIVERGENCE,
        "one_full_logits_tensor_mib": logits_mib,
        "rows": rows, "markdown": "\n".join(table),
    }
    write_record(record, args.out, started, record["markdown"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
