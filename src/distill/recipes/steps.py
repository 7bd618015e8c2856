"""The steps of a recipe run, each a function of one :class:`RunState`.

A run is ``data → teacher → student → baseline → [[stages]] → evaluate → write``
(:func:`distill.recipes.presets.steps_for` picks the list). Each step reads what the earlier
ones left on the state and adds its own part, so the planner (or a test) can call one on its
own: :func:`load_data_step`, then :func:`teacher_step`, then :func:`distil_student_step`.
This file holds the steps of a plain distillation; ``preset_steps`` the ones a pruned
student, self-distillation and sentence embeddings swap in; ``writing`` the writer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn
from torch.utils.data import TensorDataset

from distill.api import DistillResult, distill, train_model
from distill.data import mix_labeled_unlabeled
from distill.data.formats import LoadedData
from distill.evaluate.compare import compare
from distill.losses import (
    AttentionLoss,
    CombinedLoss,
    DistillationLoss,
    HiddenStateLoss,
)
from distill.losses.registry import build_loss
from distill.recipes.building import build_model, train_kwargs
from distill.recipes.data_specs import load_data_table, reads_text
from distill.recipes.schema import Recipe, SavedSpec, TrainSpec
from distill.recipes.stages import Stage, checkpoint, reuse, run_stages
from distill.recipes.teacher_setup import TeacherSetup, cached_outputs, get_teacher

log = logging.getLogger("distill")
History = list[dict[str, Any]]


@dataclass
class RunState:
    """What a run knows so far: filled in step by step, written out by the last one."""

    recipe: Recipe
    out: Path
    progress: bool | None = None
    resume: bool = False
    recipe_text: str = ""
    loaded: LoadedData | None = None  # as the data format read it (class names, preprocessing)
    train: Any = None  # the training set, a separate unlabeled set mixed in
    student_train: Any = None  # what the student learns from: ``[data] labeled`` applied
    test: Any = None
    tokenizer: Any = None
    setup: TeacherSetup | None = None
    signal: Any = None  # what the student distils from, when not ``setup.module`` (an EMA)
    generations: list[DistillResult] = field(default_factory=list)  # born-again's teachers
    student: nn.Module | None = None  # as distilled, before any stage
    distilled: Any = None  # the student's training result
    reused: bool = False  # the student is stage 0 of an earlier run (``--resume``)
    baseline: nn.Module | None = None
    pruned_start: nn.Module | None = None  # a causal LM cut to size, before recovery
    histories: dict[str, History] = field(default_factory=dict)
    stages: list[Stage] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    headline: dict[str, Any] = field(default_factory=dict)  # the saved student's own numbers

    @property
    def final_student(self) -> nn.Module:
        """What the run ships: the last stage's model, or the distilled student."""
        return self.stages[-1].model if self.stages else self.student

    @property
    def checkpoints(self) -> Path:
        return self.out / "checkpoints" / "student"

    @property
    def baseline_checkpoints(self) -> Path:
        return self.out / "checkpoints" / "baseline"

    @property
    def data_records(self) -> dict[str, Any]:
        """What the saved student keeps of its data — how inputs were prepared and the class
        names — so ``distill eval`` and ``distill predict`` treat new inputs the same way."""
        if self.loaded is None:
            return {}
        records = {"preprocessing": self.loaded.preprocessing,
                   "class_names": list(self.loaded.class_names) or None}
        return {k: v for k, v in records.items() if v is not None}


def _read_data(recipe: Recipe) -> tuple[LoadedData, Any, Any]:
    """(what the format loaded, the training set with any unlabeled set mixed in, the
    tokenizer): text is read by the teacher's tokenizer."""
    tokenizer = None
    if reads_text(recipe.data):
        from distill.hf import load_tokenizer

        tokenizer = load_tokenizer(recipe.teacher.model,
                                   trust_remote_code=recipe.teacher.trust_code)
    loaded = load_data_table(recipe.data, tokenizer)
    train = loaded.train
    if loaded.unlabeled is not None:  # samples without labels: the teacher's targets alone
        train = mix_labeled_unlabeled(train, loaded.unlabeled)
    return loaded, train, tokenizer


def load_data(recipe: Recipe) -> tuple[Any, Any, Any]:
    """(train, test, tokenizer): the ``[data]`` table's source through its data format."""
    loaded, train, tokenizer = _read_data(recipe)
    return train, loaded.test, tokenizer


def load_data_step(state: RunState) -> None:
    """The data, and the student's transfer set: scarce labels, or none at all."""
    data = state.recipe.data
    state.loaded, state.train, state.tokenizer = _read_data(state.recipe)
    state.test = state.loaded.test
    state.student_train = state.train
    if data.labeled == 0:  # no labels at all: the soft-target term alone, unweighted
        state.student_train = (state.train.unlabeled() if state.tokenizer
                               else TensorDataset(state.train.inputs))
    elif data.labeled is not None:
        state.student_train = state.train.with_scarce_labels(data.labeled)


def teacher_step(state: RunState) -> None:
    """The recipe's teacher: trained once and cached, loaded, or an ensemble. A saved model
    whose recorded (or stated) preprocessing differs from the data's is refused first."""
    check_preprocessing_matches(state)
    state.setup = get_teacher(state.recipe, state.train, state.test, state.progress,
                              state.tokenizer)
    state.histories["teacher"] = state.setup.history


def check_preprocessing_matches(state: RunState) -> None:
    """A saved teacher or student fed data prepared otherwise than it was trained on scores
    near chance and the run's numbers mean nothing: refuse it, naming both preparations."""
    from distill.artifacts import check_preprocessing, read_preprocessing
    from distill.inference import preprocessing_mismatches

    used = state.loaded.preprocessing if state.loaded is not None else None
    problems = []
    for role in ("teacher", "student"):
        spec = getattr(state.recipe, role)
        if not isinstance(spec, SavedSpec):
            continue
        recorded = (check_preprocessing(dict(spec.preprocessing), f"[{role}] preprocessing")
                    if spec.preprocessing is not None else read_preprocessing(spec.path))
        problems += preprocessing_mismatches(recorded, used, f"the {role} {spec.path.name}")
    if problems:
        raise ValueError("; ".join(problems) + " (state the data's preparation in [data], "
                         "e.g. size, channels, mean and std for an image folder)")


def reuse_distilled(state: RunState) -> bool:
    """``--resume`` with ``[[stages]]``: take the student from an earlier run's stage 0 when
    its fingerprint still matches the recipe. Whether it did."""
    if not (state.resume and state.recipe.stages):
        return False
    found = reuse(state.out, 0, "distill", state.recipe)
    if found is None:
        return False
    state.student, state.reused = found.model, True
    state.distilled = DistillResult(found.model, history=found.history)
    state.histories["student"] = found.history
    return True


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


def distil_student_step(state: RunState) -> None:
    """The student the recipe describes, distilled from the teacher."""
    if reuse_distilled(state):
        return
    state.student, state.distilled = distil_student(
        state.recipe, state.setup, state.train.info, state.student_train, state.test,
        state.checkpoints, state.progress, resume=state.resume)
    state.histories["student"] = state.distilled.history


def baseline_spec(recipe: Recipe) -> TrainSpec:
    """How the hard-label baseline trains: ``[baseline] train``, else ``[train]``."""
    return recipe.baseline.train or recipe.train


def baseline_step(state: RunState) -> None:
    """The same student trained on hard labels alone: what distillation is measured against."""
    recipe, spec = state.recipe, baseline_spec(state.recipe)
    teacher = state.setup.module if state.setup is not None else None
    baseline = build_model(recipe.student, state.train.info, recipe.train.seed, teacher)
    log.info("baseline: the same student on hard labels (%d epochs)", spec.epochs)
    fitted = train_model(baseline, state.student_train.labeled(), eval=state.test,
                         progress=state.progress, description="baseline",
                         checkpoint_dir=state.baseline_checkpoints, resume=state.resume,
                         **train_kwargs(spec))
    state.baseline, state.histories["baseline"] = baseline, fitted.history


def stages_step(state: RunState) -> None:
    """Every ``[[stages]]`` entry in turn, each checkpointed (the distilled student: stage 0)."""
    recipe, out = state.recipe, state.out
    if not state.reused:
        checkpoint(out, recipe, Stage(0, "distill", out, state.student,
                                      state.histories["student"]), "distill")
    state.stages = run_stages(recipe, out, state.student, state.setup.module,
                              state.student_train, state.test, resume=state.reused,
                              progress=state.progress, records=state.data_records)
    state.histories.update({f"stage {s.index}: {s.label}": s.history for s in state.stages
                            if s.history})


def evaluate_step(state: RunState) -> None:
    """Teacher, student, baseline and every stage but the last measured side by side."""
    ev = state.recipe.evaluate
    log.info("evaluating side by side (latency with %d thread(s))", ev.threads)
    earlier = {"distill": state.student} if state.stages else {}
    earlier.update({s.label: s.model for s in state.stages[:-1]})
    measured = compare(
        state.setup.module, state.final_student, state.test, baseline=state.baseline,
        batch_sizes=ev.batch_sizes, threads=ev.threads, latency_repeats=ev.latency_repeats,
        stages=earlier,
    )
    state.metrics = {**measured, **state.metrics}
    state.headline = {"accuracy": measured["student"].get("accuracy")}


def _loss(recipe: Recipe, student, teacher) -> DistillationLoss:
    """KD on the outputs, plus the intermediate-layer terms the recipe asks for."""
    spec = recipe.loss
    kd = build_loss(spec, student, teacher)
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
