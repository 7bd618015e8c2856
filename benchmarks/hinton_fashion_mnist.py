"""The shape of Hinton, Vinyals & Dean (2015)'s MNIST table, on Fashion-MNIST.

Rows: the teacher; a small student trained on hard labels; the same student distilled from the
teacher; each student row over several seeds (mean ± std), plus the share of the
teacher–baseline gap that distillation closes. A second table repeats it where labels are
scarce: a few labeled images plus the rest of the training set as an unlabeled transfer set
that the teacher labels. Ablation rows show which ingredients mattered.

    python benchmarks/hinton_fashion_mnist.py                 # everything (hours on 2 cores)
    python benchmarks/hinton_fashion_mnist.py --only full --seeds 3 --jobs 2
    python benchmarks/hinton_fashion_mnist.py --quick          # minutes: a smoke run
    python benchmarks/hinton_fashion_mnist.py --exclude "+ aug"  # without the augmented rows

Every job runs with one torch thread; ``--jobs`` of them run side by side. The teacher is
trained once and cached (``$DISTILL_CACHE/teachers/bench-…``); reruns reuse it. Each finished
job is appended to ``<out>.jobs.jsonl``: an interrupted run, started again with the same
arguments, skips the jobs it already has (``--fresh`` starts over).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import torch

import distill
from distill import atomic
from distill.data import load_fashion_mnist
from distill.evaluate import classification_metrics, count_parameters, predict
from distill.evaluate.uncertainty import seeds_difference
from distill.paths import cache_dir

HERE = Path(__file__).resolve().parent

TEACHER = dict(channels=[32, 64], convs_per_stage=2, head="flatten", hidden=256, dropout=0.3)
TEACHER_TRAIN = dict(epochs=20, lr=2e-3, augment="flip-shift", batch_size=128)
# two students, both >= 10x smaller than the teacher: one with a wide fully connected layer
# (capacity to overfit hard labels, and to use soft targets), one all-convolutional and tiny
STUDENTS = {
    "cnn-86k": dict(channels=[24, 48], convs_per_stage=1, head="flatten", hidden=32),
    "cnn-24k": dict(channels=[16, 32, 64], convs_per_stage=1, head="gap", hidden=0),
}
# a teacher assistant (Mirzadeh et al. 2020) halfway between teacher and student
ASSISTANT = dict(channels=[32, 64], convs_per_stage=1, head="flatten", hidden=128)
ASSISTANT_KD = dict(epochs=30, temperature=2.0, alpha=0.5)


@dataclass(frozen=True)
class Variant:
    """One row of a table: how the student is trained."""

    table: str
    name: str
    teacher: bool  # distilled (True) or hard labels only (False)
    augment: str = "none"
    temperature: float = 2.0
    alpha: float = 0.5
    labeled: int | None = None  # None: every training label is used
    epochs: int = 30
    student: str = "cnn-86k"
    via_assistant: bool = False


HINTON = dict(temperature=4.0, alpha=0.9)  # the classic setting, as an ablation
VARIANTS = [
    # Hinton's setting: the teacher was trained with augmentation and dropout; the student
    # learns from the plain training images, with hard labels or with the teacher's targets.
    Variant("full", "student, hard labels", teacher=False),
    Variant("full", "student, distilled (T=2, α=0.5)", teacher=True),
    Variant("full", "student, distilled (T=4, α=0.9)", teacher=True, **HINTON),
    Variant("full", "student, distilled via assistant (T=2, α=0.5)", teacher=True,
            via_assistant=True),
    # the same with flip-and-shift augmentation: the teacher labels each augmented view
    Variant("full", "student + aug, hard labels", teacher=False, augment="flip-shift"),
    Variant("full", "student + aug, distilled (T=2, α=0.5)", teacher=True, augment="flip-shift"),
    # a student without the capacity to overfit: is there anything left to regularise?
    Variant("full", "tiny student, hard labels", teacher=False, student="cnn-24k"),
    Variant("full", "tiny student, distilled (T=2, α=0.5)", teacher=True, student="cnn-24k"),
    # scarce labels: 1,000 labels (100 per class); the other 59,000 images are unlabeled.
    # The hard-label row gets as many optimizer steps as the distilled row. alpha 0.98, not
    # 0.5: KDLoss averages the hard-label term over the ~2 labelled images of a batch, so at
    # 0.5 the 1,000 labels would weigh as much as the 59,000 soft targets (recipes/demo.toml).
    Variant("scarce", "student, 1,000 labels, hard labels", teacher=False, labeled=1000),
    Variant("scarce", "student, 1,000 labels + 59k unlabeled, distilled (T=2, α=0.98)",
            teacher=True, labeled=1000, alpha=0.98),
]


@dataclass
class JobResult:
    variant: Variant
    seed: int
    accuracy: float
    agreement: float
    kl_to_teacher: float
    ece: float
    best_epoch_accuracy: float
    seconds: float
    curve: list[float] = field(default_factory=list)


def teacher_folder(train_settings: dict, limit: int | None) -> Path:
    blob = json.dumps({"teacher": TEACHER, "train": train_settings, "limit": limit}, sort_keys=True)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:12]
    return cache_dir() / "teachers" / f"bench-hinton-{digest}"


def get_teacher(train_settings: dict, threads: int, limit: int | None) -> tuple[Path, float]:
    folder = teacher_folder(train_settings, limit)
    if not (folder / "config.json").is_file():
        train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
        if limit:
            train = train.subset(torch.arange(limit))
        torch.manual_seed(train_settings.get("seed", 0))  # other seeds: ensemble members
        model = distill.build_cnn((1, 28, 28), 10, **TEACHER)
        started = time.perf_counter()
        result = distill.train_model(model, train, eval=test, num_threads=threads,
                                     description="teacher", **train_settings)
        print(f"teacher: {result.metrics['accuracy']:.4f} in {time.perf_counter() - started:.0f}s",
              flush=True)
        distill.save(model, folder, metadata={"accuracy": result.metrics["accuracy"]})
    return folder, json.loads((folder / "config.json").read_text())["metadata"]["accuracy"]


def get_assistant(teacher_path: Path, limit: int | None, epochs: int, threads: int) -> Path:
    """The teacher assistant: distilled once from the teacher, then a teacher itself."""
    settings = {**ASSISTANT_KD, "epochs": epochs}
    blob = json.dumps({"teacher": str(teacher_path), "assistant": ASSISTANT, "kd": settings},
                      sort_keys=True)
    folder = teacher_path.with_name(
        f"bench-assistant-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"
    )
    if not (folder / "config.json").is_file():
        train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
        if limit:
            train = train.subset(torch.arange(limit))
        torch.manual_seed(0)
        assistant = distill.build_cnn((1, 28, 28), 10, **ASSISTANT)
        # checkpointed every epoch: a session that ends mid-way loses at most one epoch
        result = distill.distill(
            distill.load(teacher_path), assistant, train, eval=test,
            loss=distill.KDLoss(settings["temperature"], settings["alpha"]),
            epochs=settings["epochs"], lr=3e-3, num_threads=threads, precompute_teacher=True,
            checkpoint_dir=folder.with_name(folder.name + ".checkpoints"), resume=True,
        )
        print(f"assistant: {result.metrics['accuracy']:.4f}", flush=True)
        distill.save(assistant, folder, metadata={"accuracy": result.metrics["accuracy"]})
    return folder


def run_job(
    variant: Variant, seed: int, teacher_path: str, assistant_path: str | None, limit: int | None
) -> JobResult:
    torch.set_num_threads(1)
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    if limit:
        train = train.subset(torch.arange(limit))
    teacher = distill.load(teacher_path)
    source = distill.load(assistant_path) if variant.via_assistant else teacher
    torch.manual_seed(seed)
    student = distill.build_cnn((1, 28, 28), 10, **STUDENTS[variant.student])
    # checkpointed every epoch, in a folder named by the job: a session that ends mid-job
    # loses at most an epoch, and the next run with the same arguments goes on from there
    blob = json.dumps({"variant": asdict(variant), "seed": seed, "teacher": teacher_path,
                       "limit": limit}, sort_keys=True)
    checkpoints = cache_dir() / "benchmark-checkpoints" / (
        "hinton-" + hashlib.sha256(blob.encode()).hexdigest()[:16])
    settings = dict(epochs=variant.epochs, batch_size=128, lr=3e-3, seed=seed,
                    augment=variant.augment, progress=False, checkpoint_dir=checkpoints,
                    resume=True)
    started = time.perf_counter()
    if variant.teacher:
        data = train.with_scarce_labels(variant.labeled) if variant.labeled else train
        result = distill.distill(
            source, student, data, eval=test,
            loss=distill.KDLoss(variant.temperature, variant.alpha),
            precompute_teacher=variant.augment == "none", **settings,
        )
    else:
        data = train
        if variant.labeled:
            data = train.with_scarce_labels(variant.labeled).labeled()
            # as many optimizer steps as a distilled run over the whole transfer set: the
            # labeled images repeated to its size, so an epoch (and its evaluation) is one too
            copies = -(-len(train) // len(data))
            data = data.subset(torch.arange(len(data)).repeat(copies))
        result = distill.train_model(student, data, eval=test, **settings)
    seconds = time.perf_counter() - started
    student_pred = predict(student, test)
    teacher_pred = predict(teacher, test)
    m = classification_metrics(student_pred.logits, student_pred.labels, teacher_pred.logits)
    curve = [h["eval_accuracy"] for h in result.history]
    return JobResult(variant, seed, m["accuracy"], m["agreement"], m["kl_to_teacher"], m["ece"],
                     max(curve), seconds, curve)


def job_key(variant: Variant, seed: int, teacher_path: Path, limit: int | None) -> str:
    """What makes a finished job reusable: its settings, seed, teacher and data. The teacher is
    named by its weights' checksum, not only its settings: retrained from the same settings in
    another checkout it came out different (94.16% against 94.30%), and one table must not mix
    students of two teachers."""
    return json.dumps({"variant": asdict(variant), "seed": seed, "teacher": teacher_path.name,
                       "teacher_sha256": teacher_checksum(teacher_path), "limit": limit},
                      sort_keys=True)


def teacher_checksum(teacher_path: Path) -> str:
    return hashlib.sha256((teacher_path / "model.safetensors").read_bytes()).hexdigest()[:16]


def finished_jobs(log: Path) -> dict[str, JobResult]:
    """Jobs recorded by an earlier, possibly interrupted, run; a torn last line is skipped."""
    done: dict[str, JobResult] = {}
    if log.is_file():
        for line in log.read_text().splitlines():
            try:
                entry = json.loads(line)
                result = entry["result"]
                result["variant"] = Variant(**result["variant"])
                done[entry["key"]] = JobResult(**result)
            except (ValueError, KeyError, TypeError):
                continue
    return done


def summarise(results: list[JobResult], teacher_acc: float) -> dict[str, dict]:
    rows: dict[str, dict] = {}
    for r in results:
        row = rows.setdefault(r.variant.name, {"variant": asdict(r.variant), "seeds": []})
        row["seeds"].append({k: v for k, v in asdict(r).items() if k != "variant"})
    for row in rows.values():
        accs = [s["accuracy"] for s in row["seeds"]]
        row["accuracy_mean"] = statistics.mean(accs)
        row["accuracy_std"] = statistics.stdev(accs) if len(accs) > 1 else 0.0
        row["agreement_mean"] = statistics.mean(s["agreement"] for s in row["seeds"])
        row["best_epoch_mean"] = statistics.mean(s["best_epoch_accuracy"] for s in row["seeds"])
        row["retention"] = row["accuracy_mean"] / teacher_acc
    return rows


def gap_closed(student: dict, baseline: dict, teacher_acc: float) -> float:
    return (student["accuracy_mean"] - baseline["accuracy_mean"]) / (
        teacher_acc - baseline["accuracy_mean"]
    )


def gap_cell(student: dict, baseline: dict, teacher_acc: float) -> str:
    """The share of the gap closed, only when the gain is beyond the seeds' noise (Welch's 95%
    interval over the seeds, the library's own rule); otherwise "no measurable difference"."""
    accuracies = [[s["accuracy"] for s in row["seeds"]] for row in (student, baseline)]
    if min(len(a) for a in accuracies) < 2:
        return "– (one seed: no interval)"
    diff = seeds_difference(*accuracies)
    if not diff["measurable"]:
        return f"no measurable difference (±{100 * diff['half_width']:.2f} pts)"
    lo, hi = diff["ci95"]
    return (f"{100 * gap_closed(student, baseline, teacher_acc):.0f}% "
            f"({100 * diff['difference']:+.2f} pts, 95% {100 * lo:+.2f} to {100 * hi:+.2f})")


def markdown(rows: dict[str, dict], teacher_acc: float, params: dict[str, int],
             latency: dict[str, float]) -> str:
    out = []
    for table in ("full", "scarce"):
        members = [r for r in rows.values() if r["variant"]["table"] == table]
        if not members:
            continue
        title = "all 60,000 labels" if table == "full" else "1,000 labels + unlabeled transfer set"
        out += [f"### Fashion-MNIST, {title}", "",
                "| model | params | test accuracy (mean ± std) | seeds | agreement with teacher "
                "| retention | gap closed vs. its hard-label row (gain, 95% over seeds) "
                "| best epoch (mean) |",
                "|---|---:|---:|---:|---:|---:|---:|---:|",
                f"| teacher (CNN) | {params['teacher']:,} | {100 * teacher_acc:.2f}% | 1 "
                "| – | – | – | – |"]
        baselines = {
            (r["variant"]["augment"], r["variant"]["labeled"], r["variant"]["student"]): r
            for r in members if not r["variant"]["teacher"]
        }
        for r in members:
            v = r["variant"]
            closed = "–"
            base = baselines.get((v["augment"], v["labeled"], v["student"]))
            if v["teacher"] and base is not None and teacher_acc > base["accuracy_mean"]:
                closed = gap_cell(r, base, teacher_acc)
            out.append(
                f"| {v['name']} | {params[v['student']]:,} | {100 * r['accuracy_mean']:.2f} ± "
                f"{100 * r['accuracy_std']:.2f}% | {len(r['seeds'])} | "
                f"{100 * r['agreement_mean']:.2f}% | {100 * r['retention']:.1f}% | {closed} | "
                f"{100 * r['best_epoch_mean']:.2f}% |"
            )
        out.append("")
    for name in latency:
        if name == "teacher":
            continue
        out.append(
            f"- {name}: {params['teacher'] / params[name]:.1f}× fewer parameters than the "
            f"teacher; batch-1 CPU latency (p50, 1 thread) {latency[name]:.3f} ms against "
            f"{latency['teacher']:.3f} ms ({latency['teacher'] / latency[name]:.1f}× faster)."
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2, help="parallel jobs, one thread each")
    parser.add_argument("--only", choices=["full", "scarce"], help="run one table")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2 epochs, 5,000 training images, 1 seed")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "hinton_fashion_mnist.json")
    parser.add_argument("--fresh", action="store_true", help="ignore jobs finished earlier")
    parser.add_argument("--exclude", action="append", default=[], metavar="TEXT",
                        help="leave out rows whose name contains TEXT (repeatable)")
    args = parser.parse_args(argv)

    variants = [v for v in VARIANTS if args.only in (None, v.table)
                and not any(text in v.name for text in args.exclude)]
    teacher_train = dict(TEACHER_TRAIN)
    limit, seeds, assistant_epochs = None, args.seeds, ASSISTANT_KD["epochs"]
    if args.quick:
        variants = [Variant(**{**asdict(v), "epochs": 2}) for v in variants]
        teacher_train["epochs"] = assistant_epochs = 2
        limit, seeds = 5000, 1
        args.out = args.out.with_name(args.out.stem + "_quick.json")

    started = time.perf_counter()
    teacher_path, teacher_acc = get_teacher(teacher_train, threads=args.jobs, limit=limit)
    jobs = [(v, s) for v in variants for s in range(seeds)]
    # cheap rows first, so that an interrupted run has the headline rows
    jobs.sort(key=lambda job: job[0].augment != "none")
    log = args.out.with_suffix(".jobs.jsonl")
    log.parent.mkdir(parents=True, exist_ok=True)
    if args.fresh:
        log.unlink(missing_ok=True)
    done = finished_jobs(log)
    keys = {job: job_key(job[0], job[1], teacher_path, limit) for job in jobs}
    results: list[JobResult] = [done[keys[job]] for job in jobs if keys[job] in done]
    todo = [job for job in jobs if keys[job] not in done]
    assistant_path = None  # trained only when a job still to do learns from it
    if any(v.via_assistant for v, _ in todo):
        assistant_path = get_assistant(teacher_path, limit, assistant_epochs, threads=args.jobs)
    print(f"{len(jobs)} jobs ({len(results)} done earlier) on {args.jobs} processes", flush=True)
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
        futures = {
            pool.submit(run_job, v, s, str(teacher_path),
                        str(assistant_path) if assistant_path else None, limit): (v, s)
            for v, s in todo
        }
        for future in as_completed(futures):
            r = future.result()
            results.append(r)
            with log.open("a") as f:
                f.write(json.dumps({"key": keys[futures[future]], "result": asdict(r)}) + "\n")
            print(f"{r.variant.name} seed {r.seed}: {100 * r.accuracy:.2f}% "
                  f"({r.seconds:.0f}s)", flush=True)
    order = {job: i for i, job in enumerate((v, s) for v in variants for s in range(seeds))}
    results.sort(key=lambda r: order[(r.variant, r.seed)])

    models = {"teacher": distill.load(teacher_path)}
    for name in sorted({v.student for v in variants}):
        models[name] = distill.build_cnn((1, 28, 28), 10, **STUDENTS[name])
    if any(v.via_assistant for v in variants):  # its size and speed: the architecture's own
        models["assistant"] = distill.build_cnn((1, 28, 28), 10, **ASSISTANT)
    latency_data = load_fashion_mnist("test").subset(torch.arange(64))
    lat = distill.measure_latency(models, latency_data, batch_sizes=(1,), threads=1, repeats=200)
    latency = {name: v[1]["p50"] for name, v in lat.items()}
    params = {name: count_parameters(m) for name, m in models.items()}
    rows = summarise(results, teacher_acc)
    table = markdown(rows, teacher_acc, params, latency)
    record = {
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(),
                    "processor": platform.processor() or platform.machine(),
                    "threads_per_job": 1, "jobs": args.jobs, "torch": torch.__version__},
        "wall_seconds": time.perf_counter() - started,
        "teacher": {"spec": TEACHER, "train": teacher_train, "accuracy": teacher_acc,
                    "sha256_16": teacher_checksum(teacher_path)},
        "students": STUDENTS,
        "assistant": ({"spec": ASSISTANT, "kd": ASSISTANT_KD}
                      if any(v.via_assistant for v in variants) else None),
        "params": params,
        "latency_ms_p50_b1": latency,
        "rows": rows,
        "markdown": table,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_json(args.out, record)
    print(table)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
