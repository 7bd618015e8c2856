"""Pruning the fine-tuned MiniLM sentiment teacher: 50% unstructured, 2:4, 50% structured.

The teacher is the one the DistilBERT benchmark fine-tunes on Rotten Tomatoes (cached there).
Structured pruning removes half of every block's MLP neurons (``intermediate_size`` 1536 ->
768, so transformers still opens the model); masks zero half of the Linear weights of the
blocks (the classifier stays dense). Each pruned copy is recovered for the same steps by
distillation from the unpruned teacher (KD, T=2, α=0.5, teacher outputs precomputed) or by
fine-tuning on labels. Latency: one thread, batch 1 and 32 at 64 tokens, interleaved.

    python benchmarks/pruning_minilm.py --seeds 1 --jobs 2
    python benchmarks/pruning_minilm.py --quick

Set-up: as the DistilBERT benchmark (make bench-hf); its fine-tuned teacher is reused.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import sys
import time
from pathlib import Path

import torch

import distill
from distill.hf import load_tokenizer
from distill.hf.pruning import prune_neurons
from distill.prune import magnitude_prune, make_permanent, nm_prune

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from distilbert_minilm import TEACHER_TRAIN, datasets, get_teacher  # noqa: E402
from jobs import machine, run_jobs, write_record  # noqa: E402
from pruning_table import logged, summarise  # noqa: E402

METHODS = ("unstructured 50%", "2:4", "structured 50% (MLP neurons)")
RECOVERIES = ("distill", "finetune")
RECOVERY = dict(batch_size=32, lr=5e-5, weight_decay=0.01, warmup_ratio=0.1)


def pruned(teacher: torch.nn.Module, method: str) -> torch.nn.Module:
    model = copy.deepcopy(teacher)
    if method == "unstructured 50%":
        return magnitude_prune(model, 0.5, skip=["classifier"])
    if method == "2:4":
        return nm_prune(model, 2, 4, skip=["classifier"])
    return prune_neurons(model, 0.5)


def run_job(job: dict) -> dict:
    teacher = distill.load(job["teacher"])
    train, test = datasets(load_tokenizer(job["teacher"]), job["limit"])
    student = pruned(teacher, job["method"])
    settings = dict(epochs=job["epochs"], seed=job["seed"], progress=False, eval=test,
                    **RECOVERY)
    if job["recover"] == "distill":
        result = distill.distill(teacher, student, train, precompute_teacher=True,
                                 loss=distill.KDLoss(2.0, 0.5), **settings)
    else:
        result = distill.train_model(student, train, **settings)
    return {"accuracy": result.metrics["accuracy"],
            "agreement": result.metrics.get("agreement")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=1, help="recovery epochs")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS),
                        help="recover only these (all are measured pruned)")
    parser.add_argument("--recover", nargs="+", choices=RECOVERIES, default=list(RECOVERIES))
    parser.add_argument("--quick", action="store_true", help="smoke run: 256 texts")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "pruning_minilm.json")
    args = parser.parse_args(argv)
    limit = None
    if args.quick:
        limit, args.seeds = 256, 1
        args.out = args.out.with_name(args.out.stem + "_quick.json")
    started = time.perf_counter()
    teacher_dir = get_teacher(limit, TEACHER_TRAIN["epochs"] if not args.quick else 1, args.jobs)
    teacher = distill.load(teacher_dir)
    _, test = datasets(load_tokenizer(teacher_dir), limit)
    models = {"unpruned": teacher, **{m: pruned(teacher, m) for m in METHODS}}
    for model in models.values():
        make_permanent(model)
    test.trim_padding = False  # latency at the full 64 tokens
    at_once = distill.evaluate_models(models, test, reference="unpruned", batch_sizes=[1, 32],
                                      threads=1, latency_repeats=30)
    test.trim_padding = True
    jobs = [{"teacher": str(teacher_dir), "method": m, "recover": r, "seed": s,
             "epochs": args.epochs, "limit": limit}
            for s in range(args.seeds) for m in args.methods for r in args.recover]
    run_jobs(run_job, jobs, args.out.with_suffix(".jobs.jsonl"), args.jobs)
    done = logged(args.out.with_suffix(".jobs.jsonl"), teacher=str(teacher_dir),
                  epochs=args.epochs, limit=limit)
    rows, table = summarise(at_once, models, done, 32)
    record = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "machine": machine(args.jobs), "teacher": str(teacher_dir), "rows": rows,
              "recovery": {**RECOVERY, "epochs": args.epochs}, "markdown": table}
    write_record(record, args.out, started, record["markdown"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
