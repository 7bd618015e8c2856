"""Pruning the Fashion-MNIST teacher: what each kind of sparsity costs, buys, and recovers.

The teacher is the CNN of the Hinton benchmark (870,826 parameters, ~94.3%). It is pruned
three ways at 50%: unstructured magnitude (global), 2:4 semi-structured, and structured
(half of every layer's channels and hidden neurons removed; importance = weight magnitude).
Each pruned copy is then recovered for the same number of steps two ways: distilled from the
unpruned teacher (KD, T=2, α=0.5, the teacher's outputs precomputed) or fine-tuned on hard
labels. Accuracy is mean ± std over seeds (the seed drives the recovery's data order).

Latency: one thread, batch 1 and 64, the four models interleaved, medians after warm-up.
Masked models are measured as what they are on a CPU: dense tensors holding zeros.

    python benchmarks/pruning_fashion_mnist.py --seeds 3 --jobs 2
    python benchmarks/pruning_fashion_mnist.py --quick

Needs torch-pruning (pip install '.[prune]') and the Hinton teacher (trained on first use).
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
from distill.data.fashion_mnist import load_fashion_mnist
from distill.prune import (
    magnitude_prune,
    make_permanent,
    nm_prune,
    overall_sparsity,
    prune_structured,
)

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from hinton_fashion_mnist import TEACHER_TRAIN, get_teacher  # noqa: E402
from jobs import machine, run_jobs, write_record  # noqa: E402
from pruning_table import logged, summarise  # noqa: E402

METHODS = ("unstructured 50%", "2:4", "structured 50%")
RECOVERIES = ("distill", "finetune")
RECOVERY = dict(batch_size=128, lr=1e-3, weight_decay=5e-4, warmup_ratio=0.0)


def pruned(teacher: torch.nn.Module, method: str, example: torch.Tensor) -> torch.nn.Module:
    model = copy.deepcopy(teacher)
    if method == "unstructured 50%":
        return magnitude_prune(model, 0.5)
    if method == "2:4":
        return nm_prune(model, 2, 4)
    return prune_structured(model, example, 0.5)


def run_job(job: dict) -> dict:
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    if job["limit"]:
        train = train.subset(torch.arange(job["limit"]))
    teacher = distill.load(job["teacher"])
    student = pruned(teacher, job["method"], test.inputs[:2])
    settings = dict(epochs=job["epochs"], seed=job["seed"], progress=False, eval=test,
                    **RECOVERY)
    if job["recover"] == "distill":
        result = distill.distill(teacher, student, train, precompute_teacher=True,
                                 loss=distill.KDLoss(2.0, 0.5), **settings)
    else:
        result = distill.train_model(student, train, **settings)
    return {"accuracy": result.metrics["accuracy"],
            "agreement": result.metrics.get("agreement"),
            "sparsity": overall_sparsity(student),
            "curve": [h["eval_accuracy"] for h in result.history]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3, help="recovery epochs")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS),
                        help="recover only these (all are measured pruned)")
    parser.add_argument("--recover", nargs="+", choices=RECOVERIES, default=list(RECOVERIES))
    parser.add_argument("--quick", action="store_true", help="smoke run: 2,000 images, 1 seed")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "pruning_fashion.json")
    args = parser.parse_args(argv)
    limit = None
    if args.quick:
        limit, args.seeds, args.epochs = 2000, 1, 1
        args.out = args.out.with_name(args.out.stem + "_quick.json")
    started = time.perf_counter()
    teacher_path, _ = get_teacher(dict(TEACHER_TRAIN), threads=args.jobs, limit=None)
    teacher = distill.load(teacher_path)
    test = load_fashion_mnist("test")
    models = {"unpruned": teacher}
    models.update({m: pruned(teacher, m, test.inputs[:2]) for m in METHODS})
    for model in models.values():
        make_permanent(model)  # plain dense weights (with zeros): what runs on the CPU
    at_once = distill.evaluate_models(models, test, reference="unpruned", batch_sizes=[1, 64],
                                      threads=1, latency_repeats=100)
    jobs = [{"teacher": str(teacher_path), "method": m, "recover": r, "seed": s,
             "epochs": args.epochs, "limit": limit}
            for s in range(args.seeds) for m in args.methods for r in args.recover]
    run_jobs(run_job, jobs, args.out.with_suffix(".jobs.jsonl"), args.jobs)
    done = logged(args.out.with_suffix(".jobs.jsonl"), teacher=str(teacher_path),
                  epochs=args.epochs, limit=limit)
    rows, table = summarise(at_once, models, done, 64)
    record = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(args.jobs), "teacher": str(teacher_path), "rows": rows,
        "recovery": {**RECOVERY, "epochs": args.epochs, "kd": "T=2, alpha=0.5, precomputed"},
        "markdown": table,
    }
    write_record(record, args.out, started, record["markdown"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
