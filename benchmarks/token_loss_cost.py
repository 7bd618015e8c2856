"""What one token-level distillation step costs next to a cross-entropy step: time and memory.

The student is the 2-layer llama of the language-model benchmarks (its 49,152-token output
head is most of its work, so the loss's share of a step is as large as it gets); the teacher is
SmolLM2-135M-Instruct, whose outputs on the batch are made once, before any measurement, as
dense logits (float16, as a cache stores them), top-k targets and sampled targets: a step is
what training from a cache costs, the student's forward, the loss and the backward pass.
Every setting uses the same chunking (positions per chunk) and runs in a fresh process, one
thread, with glibc told to hand freed blocks back at once; after a warm-up step, each measured
step's peak is the resident high-water mark (reset through ``/proc/self/clear_refs``) less what
was resident before it. Step time: median of the repeats.

    python benchmarks/token_loss_cost.py                    # batch 8 x 128, chunks of 64
    python benchmarks/token_loss_cost.py --rows ce "sampled 12" --repeats 3

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

CHILD_ENV = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}
# row name -> (target kind, size, fused)
ROWS = {
    "ce (autograd)": ("ce", 0, False),
    "ce": ("ce", 0, True),
    "dense (autograd)": ("dense", 0, False),
    "dense": ("dense", 0, True),
    "top-50 (autograd)": ("topk", 50, False),
    "top-50": ("topk", 50, True),
    "sampled 12 (autograd)": ("sampled", 12, False),
    "sampled 12": ("sampled", 12, True),
}


def measure(row: str, batch: int, length: int, chunk: int, repeats: int) -> dict:
    """One row, in this process: the median step time and the step's peak above baseline."""
    from lm_data import build_student, load_smollm2, shakespeare, token_blocks

    import distill

    kind, size, fused = ROWS[row]
    torch.set_num_threads(1)
    teacher, tokenizer = load_smollm2()
    vocab = int(teacher.config.vocab_size)
    text = "\n".join(list(shakespeare().values())[:3])
    blocks = token_blocks(tokenizer, [text], length, limit=batch)
    inputs, labels = {"input_ids": blocks[:, :-1]}, blocks[:, 1:]
    target = None
    if kind != "ce":
        with torch.no_grad():
            logits = teacher(**inputs).logits.float()
        if kind == "dense":
            target = logits.half()
        elif kind == "topk":
            target = distill.TopKTargets.from_logits(logits, size)
        else:
            target = distill.SampledTargets.from_logits(
                logits, size, generator=torch.Generator().manual_seed(0))
        del logits
    del teacher
    student = build_student(vocab, seed=0).train()
    loss = distill.TokenKDLoss("forward", alpha=0.0 if kind == "ce" else 1.0, chunk_size=chunk,
                               fused=fused)

    def step() -> None:
        value = loss(loss.outputs(student, inputs), target, labels)
        value.backward()
        student.zero_grad(set_to_none=True)

    cpu: list[float] = []
    seconds, peaks = timed_steps(step, repeats, cpu)
    baseline = resident_mib("VmRSS")
    return {"row": row, "kind": kind, "size": size, "fused": fused,
            "step_seconds": statistics.median(seconds), "all_seconds": seconds,
            "cpu_seconds": statistics.median(cpu), "all_cpu_seconds": cpu,
            "peak_mib": statistics.median(peaks), "baseline_mib": baseline}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--chunk", type=int, default=64, help="positions per chunk")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2,
                        help="each row's process runs this many times, rows interleaved")
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child process
    parser.add_argument("--out", type=Path,
                        default=HERE / "results" / "token_loss_cost.json")
    parser.add_argument("--table", action="store_true",
                        help="print the table of the results in --out; run nothing")
    args = parser.parse_args(argv)
    if args.table:
        print(markdown(json.loads(args.out.read_text())["rows"]))
        return 0
    if args.one is not None:
        print(json.dumps(measure(args.one, args.batch, args.length, args.chunk, args.repeats)))
        return 0
    started = time.perf_counter()
    runs: dict[str, list[dict]] = {row: [] for row in args.rows}
    for _ in range(args.rounds):  # interleaved: a slow spell of the machine hits every row
        for row in args.rows:
            out = subprocess.run(
                [sys.executable, __file__, "--one", row, "--batch", str(args.batch),
                 "--length", str(args.length), "--chunk", str(args.chunk),
                 "--repeats", str(args.repeats)],
                check=True, capture_output=True, text=True, env=CHILD_ENV)
            runs[row].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(runs[row][-1], flush=True)
    rows = []
    for measured in runs.values():
        rows.append({**measured[0],
                     "step_seconds": statistics.median(s for m in measured
                                                       for s in m["all_seconds"]),
                     "cpu_seconds": statistics.median(s for m in measured
                                                      for s in m["all_cpu_seconds"]),
                     "peak_mib": statistics.median(m["peak_mib"] for m in measured),
                     "runs": measured})
    references = [r for r in rows if r["row"] in ("ce (autograd)", "ce")] or rows[:1]
    table = markdown(rows)
    record = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(1), "command": " ".join(["python", *sys.argv]),
        "batch": args.batch, "length": args.length, "chunk": args.chunk,
        "reference": references[0]["row"], "rows": rows, "markdown": table,
    }
    write_record(record, args.out, started, record["markdown"])
    return 0


def _ratio(row: dict, ref: dict) -> str:
    """The median CPU-time ratio, and its range over the rounds (each round's row against the
    same round's reference: what the machine's slow and fast spells leave of the ratio)."""
    if row is ref:
        return "1.00×"
    whole = row["cpu_seconds"] / ref["cpu_seconds"]
    per_round = [statistics.median(a["all_cpu_seconds"]) / statistics.median(b["all_cpu_seconds"])
                 for a, b in zip(row["runs"], ref["runs"], strict=True)]
    spread = (f" ({min(per_round):.2f}–{max(per_round):.2f})" if len(per_round) > 1 else "")
    return f"{whole:.2f}×{spread}"


def markdown(rows: list[dict]) -> str:
    """Step times (wall and CPU), their ratios to cross-entropy by CPU time with the rounds'
    range, and peak memory."""
    references = [r for r in rows if r["row"] in ("ce (autograd)", "ce")] or rows[:1]
    reference = references[0]
    table = ["| step | step time | CPU time | "
             + " | ".join(f"× {r['row']} (rounds' range)" for r in references)
             + " | peak memory | × " + reference["row"] + " |",
             "|---|---:|---:|" + "---:|" * len(references) + "---:|---:|"]
    for r in rows:
        ratios = " | ".join(_ratio(r, ref) for ref in references)
        table.append(f"| {r['row']} | {r['step_seconds'] * 1000:,.0f} ms | "
                     f"{r['cpu_seconds'] * 1000:,.0f} ms | {ratios} | "
                     f"{r['peak_mib']:,.0f} MiB | {r['peak_mib'] / reference['peak_mib']:.2f}× |")
    return "\n".join(table)


if __name__ == "__main__":
    sys.exit(main())
