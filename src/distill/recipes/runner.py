"""Carrying out a recipe: teacher (trained once, then cached), student, baseline, report.

A run folder ends up with ``student/``, ``metrics.json``, ``report.md`` and ``plots/``. Every
file is written atomically and ``metrics.json`` last, so a folder with ``metrics.json`` is a
complete run; a failed run leaves ``error.txt`` and its last good checkpoint instead.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import platform
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from distill import __version__, atomic
from distill.api import distill, train_model
from distill.artifacts import load, save
from distill.data import ArrayDataset, load_dataset
from distill.evaluate.compare import compare
from distill.losses.soft_targets import KDLoss
from distill.paths import cache_dir
from distill.recipes.schema import Recipe, SavedSpec, TrainSpec
from distill.report.markdown import render_report
from distill.report.plots import accuracy_vs_latency, training_curves
from distill.runtime import seed_everything
from distill.students.builders import build
from distill.teachers import CachedTeacher, cache_teacher

log = logging.getLogger("distill")
FINAL_ARTIFACTS = ("metrics.json", "report.md", "student", "plots", "error.txt")


class RunFolderError(FileExistsError):
    """The output folder already holds a run and overwriting was not asked for."""


def _train_kwargs(spec: TrainSpec) -> dict[str, Any]:
    return dict(
        epochs=spec.epochs, batch_size=spec.batch_size, lr=spec.lr, optimizer=spec.optimizer,
        weight_decay=spec.weight_decay, schedule=spec.schedule, warmup_ratio=spec.warmup_ratio,
        grad_clip=spec.grad_clip, seed=spec.seed, device=spec.device, num_threads=spec.threads,
        augment=spec.augment,
    )


def _arch_kwargs(spec) -> dict[str, Any]:
    keep = {"mlp": ("hidden", "dropout"),
            "cnn": ("channels", "convs_per_stage", "head", "hidden", "dropout")}[spec.arch]
    return {k: getattr(spec, k) for k in keep}


def build_model(spec, info, seed: int) -> nn.Module:
    """A fresh model from a spec (seeded), or a saved one loaded from its folder."""
    if isinstance(spec, SavedSpec):
        return load(spec.path).train()
    seed_everything(seed)
    return build(
        spec.arch, input_shape=info.input_shape, num_classes=info.num_classes, **_arch_kwargs(spec)
    )


# how the teacher's outputs are delivered, not what the teacher is
OUTPUT_FIELDS = ("cache", "outputs", "top_k", "cache_dtype", "cache_path")


def teacher_fingerprint(recipe: Recipe) -> str:
    # what changes the trained weights; not how many threads computed them
    teacher = recipe.teacher.model_dump(
        mode="json", exclude={**dict.fromkeys(OUTPUT_FIELDS, True), "train": {"threads"}}
    )
    data = recipe.data.model_dump(mode="json", include={"dataset"})
    blob = json.dumps({"v": 1, "teacher": teacher, "data": data}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def get_teacher(recipe: Recipe, train: ArrayDataset, test: ArrayDataset, progress) -> tuple:
    """The recipe's teacher, where it is saved (if anywhere), and its training history."""
    spec = recipe.teacher
    if isinstance(spec, SavedSpec):
        return load(spec.path), spec.path, []
    folder = cache_dir() / "teachers" / teacher_fingerprint(recipe)
    if spec.cache and (folder / "config.json").is_file():
        log.info("teacher: reusing %s", folder)
        return load(folder), folder, []
    log.info("teacher: training %s (%d epochs)", spec.arch, spec.train.epochs)
    model = build_model(spec, train.info, spec.train.seed)
    result = train_model(
        model, train, eval=test, progress=progress,
        description="teacher", **_train_kwargs(spec.train),
    )
    if not spec.cache:
        return model.eval(), None, result.history
    save(model, folder, metadata={"accuracy": result.metrics.get("accuracy")})
    log.info("teacher: %.2f%% test accuracy, cached in %s", 100 * result.metrics["accuracy"],
             folder)
    return model.eval(), folder, result.history


def cached_outputs(recipe: Recipe, teacher, data, progress) -> CachedTeacher:
    """The teacher's outputs on the training set, from disk (built or resumed when needed)."""
    spec = recipe.teacher
    kind = f"top{spec.top_k}" if spec.top_k else "dense"
    managed = spec.cache_path is None
    path = spec.cache_path or (
        cache_dir() / "teacher-outputs"
        / f"{teacher_fingerprint(recipe)}-{recipe.data.dataset}-train-{kind}-{spec.cache_dtype}"
    )
    log.info("teacher outputs: %s", path)
    # a folder distill manages is rebuilt when stale; one the user named is never overwritten
    return cache_teacher(teacher, data, path, top_k=spec.top_k, dtype=spec.cache_dtype,
                         progress=progress, overwrite=managed, source=teacher)


def environment() -> dict[str, Any]:
    return {
        "machine": f"{platform.machine()} {platform.processor() or platform.system()}".strip(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "distill": __version__,
    }


def prepare_folder(out: Path, force: bool) -> None:
    existing = [name for name in FINAL_ARTIFACTS if (out / name).exists()]
    if existing and not force:
        raise RunFolderError(
            f"{out} already holds a run ({', '.join(existing)}); choose another --out or "
            "pass --force to replace it"
        )
    for name in ("metrics.json", "error.txt", "report.md"):  # completion markers go first
        (out / name).unlink(missing_ok=True)
    for name in ("student", "plots", "checkpoints"):
        shutil.rmtree(out / name, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)


def run_recipe(
    recipe: Recipe,
    out: str | Path,
    *,
    recipe_text: str = "",
    force: bool = False,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Carry out ``recipe`` into the folder ``out``; return what ``metrics.json`` holds."""
    out = Path(out)
    prepare_folder(out, force)
    try:
        return _run(recipe, out, recipe_text, progress)
    except BaseException as err:
        atomic.write_text(out / "error.txt", f"{type(err).__name__}: {err}\n")
        raise


def _run(recipe: Recipe, out: Path, recipe_text: str, progress) -> dict[str, Any]:
    data = recipe.data
    options = {"root": data.root} if data.root is not None and data.dataset != "digits" else {}
    train = load_dataset(data.dataset, "train", **options)
    test = load_dataset(data.dataset, "test", **options)
    student_train = train.with_scarce_labels(data.labeled) if data.labeled else train

    teacher, teacher_path, teacher_history = get_teacher(recipe, train, test, progress)
    student = build_model(recipe.student, train.info, recipe.train.seed)
    log.info("student: distilling (%d epochs, T=%g, alpha=%g)", recipe.train.epochs,
             recipe.loss.temperature, recipe.loss.alpha)
    loss = KDLoss(recipe.loss.temperature, recipe.loss.alpha)
    signal = teacher
    if recipe.teacher.outputs == "cached":
        signal = cached_outputs(recipe, teacher, student_train, progress)
    distilled = distill(
        signal, student, student_train, eval=test, loss=loss,
        checkpoint_dir=out / "checkpoints" / "student", progress=progress,
        precompute_teacher=recipe.teacher.outputs == "precomputed",
        **_train_kwargs(recipe.train),
    )
    histories = {"teacher": teacher_history, "student": distilled.history}
    baseline = None
    if recipe.baseline.enabled:
        baseline = build_model(recipe.student, train.info, recipe.train.seed)
        spec = recipe.baseline.train or recipe.train
        log.info("baseline: the same student on hard labels (%d epochs)", spec.epochs)
        fitted = train_model(
            baseline, student_train.labeled(), eval=test,
            progress=progress, description="baseline", **_train_kwargs(spec),
        )
        histories["baseline"] = fitted.history

    ev = recipe.evaluate
    log.info("evaluating side by side (latency with %d thread(s))", ev.threads)
    metrics: dict[str, Any] = compare(
        teacher, student, test, baseline=baseline, batch_sizes=ev.batch_sizes,
        threads=ev.threads, latency_repeats=ev.latency_repeats,
    )
    metrics.update(
        name=recipe.name or out.name,
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        environment=environment(),
        history=histories,
        recipe=recipe.model_dump(mode="json"),
        teacher_path=str(teacher_path) if teacher_path else None,
    )
    save(student, out / "student", metadata={"accuracy": metrics["student"].get("accuracy")})
    plots = {
        "accuracy against latency": "plots/accuracy_vs_latency.png",
        "training curves": "plots/training_curves.png",
    }
    accuracy_vs_latency(metrics, out / plots["accuracy against latency"])
    training_curves(histories, out / plots["training curves"])
    atomic.write_text(out / "report.md", render_report(metrics, recipe_text, plots))
    atomic.write_json(out / "metrics.json", metrics)
    return metrics
