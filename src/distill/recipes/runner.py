"""Carrying out a recipe: teacher (trained once, then cached), student, baseline, report.

A run folder ends up with ``student/``, ``metrics.json``, ``report.md``, ``report.html``
and ``plots/``. Every file is written atomically and ``metrics.json`` last, so a folder with
``metrics.json`` is a complete run; a failed run leaves ``error.txt`` and its last good
checkpoint instead.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import platform
import shutil
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import TensorDataset

from distill import __version__, atomic
from distill.api import DistillResult, distill, train_model
from distill.artifacts import save
from distill.data import ArrayDataset, mix_labeled_unlabeled
from distill.engine import distributed
from distill.evaluate.compare import compare
from distill.losses import (
    AttentionLoss,
    CombinedLoss,
    DistillationLoss,
    HiddenStateLoss,
    KDLoss,
)
from distill.recipes.building import build_model, train_kwargs
from distill.recipes.data_specs import load_data_table, reads_text
from distill.recipes.schema import PrunedStudent, Recipe
from distill.recipes.stages import STAGES, Stage, checkpoint, reuse, run_stages
from distill.recipes.teacher_setup import (
    TeacherSetup,
    cached_outputs,
    get_teacher,
    teacher_fingerprint,
)
from distill.report.html import render_html
from distill.report.markdown import render_report
from distill.report.plots import accuracy_vs_latency, training_curves
from distill.self_distillation import born_again
from distill.teachers import EMATeacher

__all__ = ["RunFolderError", "run_recipe", "teacher_fingerprint"]

log = logging.getLogger("distill")
FINAL_ARTIFACTS = ("metrics.json", "report.md", "report.html", "student", "plots", "error.txt")


class RunFolderError(FileExistsError):
    """The output folder already holds a run and overwriting was not asked for."""


def environment() -> dict[str, Any]:
    return {
        "machine": f"{platform.machine()} {platform.processor() or platform.system()}".strip(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "distill": __version__,
    }


def prepare_folder(out: Path, force: bool, resume: bool = False) -> None:
    """Clear what a new run replaces; ``resume`` keeps the finished pipeline stages and the
    student's training checkpoint."""
    existing = [name for name in FINAL_ARTIFACTS if (out / name).exists()]
    if existing and not (force or resume):
        raise RunFolderError(
            f"{out} already holds a run ({', '.join(existing)}); choose another --out, pass "
            "--force to replace it, or --resume to reuse its finished stages"
        )
    if not resume:
        shutil.rmtree(out / STAGES, ignore_errors=True)
    for folder in (out, *sorted((out / STAGES).glob("*"))):  # what killed writes left
        atomic.remove_temporaries(folder)
    # completion markers go first
    for name in ("metrics.json", "error.txt", "report.md", "report.html"):
        (out / name).unlink(missing_ok=True)
    for name in ("student", "plots") + (() if resume else ("checkpoints",)):
        shutil.rmtree(out / name, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)


def run_recipe(
    recipe: Recipe,
    out: str | Path,
    *,
    recipe_text: str = "",
    force: bool = False,
    resume: bool = False,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Carry out ``recipe`` into the folder ``out``; return what ``metrics.json`` holds.

    ``resume``: reuse the pipeline stages a previous run of the same recipe finished there and
    continue its student's distillation from the last complete epoch.
    """
    out = Path(out)
    if distributed.join(recipe.train.device) is not None:  # under torchrun: one run, N ranks
        if recipe.stages:
            raise ValueError("[[stages]] run in one process for now; launch this recipe "
                             "without torchrun")
        progress = progress if distributed.is_main() else False
    with distributed.main_first():
        if distributed.is_main():
            prepare_folder(out, force, resume)
    try:
        return _run(recipe, out, recipe_text, progress, resume)
    except BaseException as err:
        if distributed.is_main():
            atomic.write_text(out / "error.txt", f"{type(err).__name__}: {err}\n")
        raise


def load_data(recipe: Recipe) -> tuple[Any, Any, Any]:
    """(train, test, tokenizer): the ``[data]`` table's source through its data format; text
    is read by the teacher's tokenizer. A separate unlabeled set joins the training data as
    samples without labels (the teacher's soft targets alone)."""
    tokenizer = None
    if reads_text(recipe.data):
        from distill.hf import load_tokenizer

        tokenizer = load_tokenizer(recipe.teacher.model,
                                   trust_remote_code=recipe.teacher.trust_code)
    loaded = load_data_table(recipe.data, tokenizer)
    train = loaded.train
    if loaded.unlabeled is not None:
        train = mix_labeled_unlabeled(train, loaded.unlabeled)
    return train, loaded.test, tokenizer


def _loss(recipe: Recipe, student, teacher) -> DistillationLoss:
    """KD on the outputs, plus the intermediate-layer terms the recipe asks for."""
    spec = recipe.loss
    kd = KDLoss(spec.temperature, spec.alpha)
    terms: dict[str, Any] = {}
    if spec.hidden is not None:
        terms["hidden"] = (HiddenStateLoss(student, teacher, _layer_map(spec.hidden.layers),
                                           kind=spec.hidden.kind), spec.hidden.weight)
    if spec.attention is not None:
        terms["attention"] = (AttentionLoss(student, teacher, _layer_map(spec.attention.layers)),
                              spec.attention.weight)
    return CombinedLoss({"kd": kd, **terms}) if terms else kd


def _layer_map(layers: dict[str, Any] | None) -> dict[int | str, int | str] | None:
    """TOML keys are strings: "0" means block 0, other keys are module names."""
    if layers is None:
        return None
    return {int(k) if k.isdigit() else k: v for k, v in layers.items()}


def _run(recipe: Recipe, out: Path, recipe_text: str, progress, resume: bool = False
         ) -> dict[str, Any]:
    data = recipe.data
    train, test, tokenizer = load_data(recipe)
    student_train = train
    if data.labeled == 0:  # no labels at all: the soft-target term alone, unweighted
        student_train = train.unlabeled() if tokenizer else TensorDataset(train.inputs)
    elif data.labeled is not None:
        student_train = train.with_scarce_labels(data.labeled)
    loss: DistillationLoss = KDLoss(recipe.loss.temperature, recipe.loss.alpha)
    checkpoints = out / "checkpoints" / "student"

    if recipe.loss.kind == "embedding":
        from distill.recipes.embedding_run import run_embedding

        return run_embedding(recipe, out, recipe_text, progress, train, test, tokenizer,
                             environment())
    reused = False
    if recipe.self_distill is not None:
        setup, student, distilled, baseline, histories = _self_distill(
            recipe, student_train, test, loss, checkpoints, progress)
    elif isinstance(recipe.student, PrunedStudent):
        from distill.recipes.pruned_run import run_pruned

        setup = get_teacher(recipe, train, test, progress, tokenizer)
        student, distilled, baseline, histories = run_pruned(
            recipe, setup, student_train, test, loss, checkpoints, progress)
    else:
        setup = get_teacher(recipe, train, test, progress, tokenizer)
        stage0 = reuse(out, 0, "distill", recipe) if resume and recipe.stages else None
        if stage0 is not None:
            student, distilled, reused = stage0.model, DistillResult(stage0.model), True
            distilled.history = stage0.history
        else:
            student, distilled = distil_student(recipe, setup, train.info, student_train,
                                                test, checkpoints, progress, resume=resume)
        histories = {"teacher": setup.history, "student": distilled.history}
        baseline = None
        if recipe.baseline.enabled:
            baseline = build_model(recipe.student, train.info, recipe.train.seed, setup.module)
            spec = recipe.baseline.train or recipe.train
            log.info("baseline: the same student on hard labels (%d epochs)", spec.epochs)
            fitted = train_model(
                baseline, student_train.labeled(), eval=test,
                progress=progress, description="baseline", **train_kwargs(spec),
            )
            histories["baseline"] = fitted.history
    stages: list[Stage] = []
    if recipe.stages:
        if not reused:
            checkpoint(out, recipe, Stage(0, "distill", out, student, distilled.history),
                       "distill")
        stages = run_stages(recipe, out, student, setup.module, student_train, test,
                            resume=reused, progress=progress)
        histories.update({f"stage {s.index}: {s.label}": s.history for s in stages
                          if s.history})
    distilled_student, student = student, stages[-1].model if stages else student

    if not distributed.is_main():  # rank 0 measures and writes; the others are done
        return {}
    ev = recipe.evaluate
    log.info("evaluating side by side (latency with %d thread(s))", ev.threads)
    earlier = {"distill": distilled_student} if stages else {}
    earlier.update({s.label: s.model for s in stages[:-1]})
    metrics: dict[str, Any] = compare(
        setup.module, student, test, baseline=baseline, batch_sizes=ev.batch_sizes,
        threads=ev.threads, latency_repeats=ev.latency_repeats, stages=earlier,
    )
    if stages:
        metrics["pipeline"] = [{"stage": s.index, "label": s.label, "seconds": s.seconds,
                                "reused": s.reused, "folder": str(s.folder.relative_to(out))}
                               for s in stages]
    metrics.update(
        name=recipe.name or out.name,
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        environment=environment(),
        history=histories,
        recipe=recipe.model_dump(mode="json"),
        teacher_path=str(setup.path) if setup.path else None,
    )
    if setup.members:
        metrics["teacher_members"] = setup.members
    if isinstance(recipe.student, PrunedStudent):
        from distill.prune import overall_sparsity, sparsity_report

        metrics["pruning"] = {
            "overall_sparsity": overall_sparsity(student),
            "layers": [{"name": r.name, "zeros": r.zeros, "total": r.total,
                        "sparsity": r.sparsity} for r in sparsity_report(student)],
        }
    if "generations" in distilled.metrics:
        metrics["generations"] = distilled.metrics["generations"]
    student_meta = {"accuracy": metrics["student"].get("accuracy")}
    if stages and stages[-1].label.startswith("export"):  # the ONNX folder is the student
        atomic.copy_tree(stages[-1].folder / "model", out / "student")
    elif tokenizer is not None and getattr(student, "distill_quantization", None) is None:
        from distill.hf import save_pretrained  # with its tokenizer: no distill needed

        save_pretrained(student, out / "student", tokenizer, metadata=student_meta)
    else:
        save(student, out / "student", metadata=student_meta)
    plots = {
        "accuracy against latency": "plots/accuracy_vs_latency.png",
        "training curves": "plots/training_curves.png",
    }
    accuracy_vs_latency(metrics, out / plots["accuracy against latency"])
    training_curves(histories, out / plots["training curves"])
    metrics["recipe_text"] = recipe_text
    atomic.write_text(out / "report.md", render_report(metrics, recipe_text, plots))
    atomic.write_text(out / "report.html", render_html(metrics, recipe_text))
    atomic.write_json(out / "metrics.json", metrics)
    return metrics


def distil_student(recipe: Recipe, setup: TeacherSetup, info, student_train, test,
                   checkpoints: Path | None, progress, resume: bool = False
                   ) -> tuple[Any, DistillResult]:
    """The recipe's student, distilled from its teacher (the run's main training)."""
    student = build_model(recipe.student, info, recipe.train.seed, setup.module)
    loss = _loss(recipe, student, setup.module)
    log.info("student: distilling (%d epochs, T=%g, alpha=%g)", recipe.train.epochs,
             recipe.loss.temperature, recipe.loss.alpha)
    signal: Any = setup.module
    if recipe.teacher.outputs == "cached":
        signal = cached_outputs(recipe, setup.module, student_train, progress)
    distilled = distill(
        signal, student, student_train, eval=test, loss=loss, checkpoint_dir=checkpoints,
        progress=progress, precompute_teacher=recipe.teacher.outputs == "precomputed",
        resume=resume and checkpoints is not None, **train_kwargs(recipe.train),
    )
    loss.release()  # layer losses' hooks: not wanted while evaluating
    return student, distilled


def _self_distill(recipe: Recipe, train: ArrayDataset, test: ArrayDataset, loss: KDLoss,
                  checkpoints: Path, progress) -> tuple:
    """The student's own architecture as its teacher: born-again generations or an EMA.

    Returns the teacher (to measure), the student, its result, the hard-label baseline and
    the training histories.
    """
    spec, info = recipe.self_distill, train.info
    settings = train_kwargs(recipe.train)
    if spec.method == "ema":
        student = build_model(recipe.student, info, recipe.train.seed)
        ema = EMATeacher(student, decay=spec.decay)
        log.info("student: distilling from its moving average (decay %g, %d epochs)",
                 spec.decay, recipe.train.epochs)
        distilled = distill(ema, student, train, eval=test, loss=loss,
                            checkpoint_dir=checkpoints, progress=progress, **settings)
        histories = {"student": distilled.history}
        baseline = None
        if recipe.baseline.enabled:
            baseline = build_model(recipe.student, info, recipe.train.seed)
            fitted = train_model(baseline, train.labeled(), eval=test, progress=progress,
                                 description="baseline", **train_kwargs(
                                     recipe.baseline.train or recipe.train))
            histories["baseline"] = fitted.history
        return TeacherSetup(ema.module.eval()), student, distilled, baseline, histories

    log.info("born-again: %d generations of the student's architecture", spec.generations)
    results: list[DistillResult] = born_again(
        lambda: build_model(recipe.student, info, seed=None), train, generations=spec.generations,
        eval=test, loss=loss, progress=progress, **{**settings, "seed": recipe.train.seed},
    )
    first, teacher, last = results[0], results[-2], results[-1]
    last.metrics["generations"] = [
        {"generation": r.metrics["generation"], "accuracy": r.metrics.get("accuracy")}
        for r in results
    ]
    histories = {"teacher": teacher.history, "student": last.history,
                 "baseline": first.history}
    # generation 1 learned from labels alone: it is the hard-label baseline
    return TeacherSetup(teacher.student), last.student, last, first.student, histories
