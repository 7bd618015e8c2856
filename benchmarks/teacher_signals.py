"""Teacher signals on Fashion-MNIST: what a cache costs, what top-k keeps, ensembles, born-again.

Parts (``--part``, default all):

* ``timing``: one epoch of the same student trained on hard labels, distilled from a cache on
  disk, and distilled from the live teacher, interleaved round by round (median after a
  warm-up round), one thread;
* ``topk``: the student distilled from dense fp16 targets and from top-k caches (k = 1, 5, 10
  of 10 classes): bytes per sample and test accuracy;
* ``ensemble``: three teachers (same architecture, three seeds) averaged, against the best of
  them alone, as teacher of the same student;
* ``born-again``: generation 2 (distilled from generation 1) against generation 1 (labels).

    python benchmarks/teacher_signals.py --seeds 3 --jobs 2
    python benchmarks/teacher_signals.py --quick            # minutes: a smoke run

The teacher is the Hinton benchmark's (cached); the ensemble trains two more seeds once.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import torch

import distill
from distill import atomic
from distill.data import load_fashion_mnist
from distill.evaluate import classification_metrics, count_parameters, predict
from distill.paths import cache_dir

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from hinton_fashion_mnist import (  # noqa: E402
    STUDENTS,
    TEACHER_TRAIN,
    get_teacher,
    teacher_folder,
)
from jobs import machine, run_jobs  # noqa: E402

STUDENT = "cnn-86k"
KD = dict(temperature=2.0, alpha=0.5)
TOPK = [None, 1, 5, 10]


def _data(limit: int | None):
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    return (train.subset(torch.arange(limit)) if limit else train), test


def _student(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return distill.build_cnn((1, 28, 28), 10, **STUDENTS[STUDENT])


def _score(model, test, teacher_logits) -> dict:
    pred = predict(model, test)
    m = classification_metrics(pred.logits, pred.labels, teacher_logits)
    return {"accuracy": m["accuracy"], "agreement": m.get("agreement")}


def run_job(job: dict) -> dict:
    train, test = _data(job["limit"])
    settings = dict(epochs=job["epochs"], batch_size=128, lr=3e-3, seed=job["seed"],
                    progress=False)
    if job["part"] == "born-again":
        gens = distill.born_again(lambda: distill.build_cnn((1, 28, 28), 10, **STUDENTS[STUDENT]),
                                  train, generations=2, eval=test,
                                  loss=distill.KDLoss(**KD), **settings)
        return {"generation_1": gens[0].metrics["accuracy"],
                "generation_2": gens[1].metrics["accuracy"]}
    cache = distill.CachedTeacher(job["cache"], verify="size")
    student = _student(job["seed"])
    distill.distill(cache, student, train, loss=distill.KDLoss(**KD), **settings)
    teacher_logits = predict(distill.load(job["teacher"]), test).logits if job["teacher"] else None
    return _score(student, test, teacher_logits)


def build_teachers(args, limit) -> dict[str, Path]:
    """Teacher 0 is the Hinton benchmark's; the ensemble's other seeds train side by side."""
    train_settings = dict(TEACHER_TRAIN)
    if args.quick:
        train_settings["epochs"] = 1
    settings = [train_settings if seed == 0 else {**train_settings, "seed": seed}
                for seed in range(3 if "ensemble" in args.part else 1)]
    missing = [s for s in settings if not (teacher_folder(s, limit) / "config.json").is_file()]
    if missing:
        with ProcessPoolExecutor(min(args.jobs, len(missing)),
                                 mp_context=get_context("spawn")) as pool:
            list(pool.map(get_teacher, missing, [1] * len(missing), [limit] * len(missing)))
    return {f"teacher-{seed}": get_teacher(s, threads=1, limit=limit)[0]
            for seed, s in enumerate(settings)}


def accuracy_of(path: Path, test) -> float:
    pred = predict(distill.load(path), test)
    return classification_metrics(pred.logits, pred.labels)["accuracy"]


def timing(teacher_path: Path, cache: distill.CachedTeacher, train, rounds: int) -> dict:
    """Epoch seconds per mode, modes interleaved within each round; round 0 is warm-up."""
    torch.set_num_threads(1)
    teacher = distill.load(teacher_path)
    modes = {
        "hard labels": lambda s: distill.train_model(s, train, epochs=1, progress=False),
        "distilled, cached targets": lambda s: distill.distill(cache, s, train, epochs=1,
                                                               progress=False),
        "distilled, live teacher": lambda s: distill.distill(teacher, s, train, epochs=1,
                                                             progress=False),
    }
    seconds: dict[str, list[float]] = {m: [] for m in modes}
    for round_ in range(rounds + 1):
        for mode, fit in modes.items():
            started = time.perf_counter()
            fit(_student(round_))
            if round_ > 0:
                seconds[mode].append(time.perf_counter() - started)
    plain = statistics.median(seconds["hard labels"])
    return {m: {"median_s": statistics.median(v), "runs": v,
                "vs_hard_labels": statistics.median(v) / plain} for m, v in seconds.items()}


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _acc(row: dict) -> str:
    return f"{100 * row['accuracy_mean']:.2f} ± {100 * row['accuracy_std']:.2f}%"


def markdown(record: dict) -> str:
    out = []
    if "timing" in record:
        out += ["| student trained on | epoch time (median) | × hard labels |", "|---|---:|---:|"]
        out += [f"| {mode} | {row['median_s']:.1f} s | {row['vs_hard_labels']:.2f}× |"
                for mode, row in record["timing"].items()]
        out.append("")
    if "topk" in record:
        out += ["| teacher targets | bytes per sample | student accuracy |", "|---|---:|---:|"]
        out += [f"| {'dense fp16' if k == 'None' else f'top-{k}'} | {row['bytes_per_sample']:.0f} "
                f"| {_acc(row) if 'accuracy_mean' in row else 'all classes kept: dense again'} |"
                for k, row in record["topk"].items()]
        out.append("")
    if "ensemble" in record:
        ens = record["ensemble"]
        best = ens["best_single"]
        out += ["| teacher | teacher accuracy | student accuracy |", "|---|---:|---:|",
                f"| best single ({best}) | {100 * record['teachers'][best]:.2f}% "
                f"| {_acc(ens['best single teacher'])} |",
                f"| ensemble of 3 | {100 * record['ensemble_accuracy']:.2f}% "
                f"| {_acc(ens['ensemble of 3'])} |", ""]
    if "born_again" in record:
        ba = record["born_again"]
        out += ["| born-again | test accuracy |", "|---|---:|",
                f"| generation 1 (hard labels) | {_acc(ba['generation_1'])} |",
                f"| generation 2 (from generation 1) | {_acc(ba['generation_2'])} |", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parts = ["timing", "topk", "ensemble", "born-again"]
    parser.add_argument("--part", nargs="+", choices=parts, default=parts)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds after a warm-up")
    parser.add_argument("--timing-rows", type=int, default=20_000,
                        help="training images per timed epoch (the ratio does not depend on it)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel jobs, one thread each")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 epoch, 3,000 training images, 1 seed, 1 round")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "teacher_signals.json")
    args = parser.parse_args(argv)
    limit = None
    if args.quick:
        limit, args.seeds, args.epochs, args.rounds = 3000, 1, 1, 1
        args.out = args.out.with_name(args.out.stem + "_quick.json")
    started = time.perf_counter()
    train, test = _data(limit)
    teachers = build_teachers(args, limit)
    # stable folders: reruns reuse the caches (their fingerprints guard them) and job keys
    caches = cache_dir() / "teacher-outputs" / f"bench-signals-{limit or 'full'}"
    record: dict = {"command": "python " + " ".join([Path(sys.argv[0]).as_posix(),
                                                      *sys.argv[1:]]),
                    "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    "machine": machine(args.jobs), "epochs": args.epochs,
                    "student": {STUDENT: STUDENTS[STUDENT]},
                    "student_params": count_parameters(_student(0))}
    record["teachers"] = {name: accuracy_of(path, test) for name, path in teachers.items()}
    base = {"epochs": args.epochs, "limit": limit}
    teacher0 = str(teachers["teacher-0"])

    def cached(name: str, model, top_k=None, dtype="float16", data=train):
        return distill.cache_teacher(model, data, caches / name, top_k=top_k, dtype=dtype,
                                     progress=False)

    if "timing" in args.part:
        rows = train.subset(torch.arange(min(args.timing_rows, len(train))))
        dense = cached(f"timing-{len(rows)}", distill.load(teacher0), data=rows)
        record["timing"] = timing(teachers["teacher-0"], dense, rows, args.rounds)
        record["timing_rows"] = len(rows)
    # every training job goes through one pool, the long born-again ones first, so that no
    # core idles between parts
    jobs = []
    if "born-again" in args.part:
        jobs += [{**base, "part": "born-again", "seed": s} for s in range(args.seeds)]
    sizes = {}
    if "topk" in args.part:
        for k in TOPK:
            cache = cached(f"top{k}" if k else "dense", distill.load(teacher0), top_k=k)
            sizes[k] = cache.stored_bytes() / cache.rows
            if k is not None and k >= cache.vocab_size:
                continue  # keeps every class: the dense targets again, bytes differ only
            jobs += [{**base, "part": "topk", "k": k, "seed": s, "cache": str(cache.path),
                      "teacher": teacher0} for s in range(args.seeds)]
    if "ensemble" in args.part:
        best = max(("teacher-0", "teacher-1", "teacher-2"), key=record["teachers"].get)
        ensemble = distill.Ensemble([distill.load(teachers[f"teacher-{s}"]) for s in range(3)])
        record["ensemble_accuracy"] = _score(ensemble, test, None)["accuracy"]
        sources = {"best single teacher": (cached("best", distill.load(teachers[best]),
                                                  dtype="float32"), teachers[best]),
                   "ensemble of 3": (cached("ensemble", ensemble, dtype="float32"), None)}
        jobs += [{**base, "part": "ensemble", "source": name, "seed": s,
                  "cache": str(c.path), "teacher": str(t) if t else None}
                 for name, (c, t) in sources.items() for s in range(args.seeds)]
    results = run_jobs(run_job, jobs, args.out.with_suffix(".jobs.jsonl"), args.jobs)
    done = list(zip(jobs, results, strict=True))

    def summary(part: str, metric: str = "accuracy", **match) -> dict:
        values = [r[metric] for j, r in done
                  if j["part"] == part and all(j[key] == v for key, v in match.items())]
        return dict(zip(("accuracy_mean", "accuracy_std"), mean_std(values), strict=True))

    if "topk" in args.part:
        trained = {j["k"] for j in jobs if j["part"] == "topk"}
        record["topk"] = {str(k): {"bytes_per_sample": size,
                                   **(summary("topk", k=k) if k in trained else {})}
                          for k, size in sizes.items()}
    if "ensemble" in args.part:
        record["ensemble"] = {"best_single": best,
                              **{name: summary("ensemble", source=name) for name in sources}}
    if "born-again" in args.part:
        record["born_again"] = {g: summary("born-again", g)
                                for g in ("generation_1", "generation_2")}
    record["wall_seconds"] = time.perf_counter() - started
    record["markdown"] = markdown(record)
    atomic.write_json(args.out, record)
    print(record["markdown"])
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
