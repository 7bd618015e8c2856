"""The steps a preset swaps into the run: a pruned teacher as the student, self-distillation
(born-again generations or a moving average) and sentence embeddings.

Everything else — data, ``[[stages]]``, the writer — is the plain run's own step.
"""

from __future__ import annotations

import logging
from typing import Any

from distill.api import DistillResult, distill
from distill.losses import KDLoss
from distill.losses.registry import build_loss
from distill.recipes.building import build_model, train_kwargs
from distill.recipes.schema import Recipe, TrainSpec
from distill.recipes.stages import example_batch
from distill.recipes.steps import RunState, baseline_spec, evaluate_step, reuse_distilled
from distill.recipes.teacher_setup import TeacherSetup
from distill.self_distillation import born_again
from distill.teachers import EMATeacher

log = logging.getLogger("distill")


def _kd(recipe: Recipe) -> KDLoss:
    return KDLoss(recipe.loss.temperature, recipe.loss.alpha)


# --- the teacher, pruned: ``[student] arch = "pruned"`` -------------------------------------

def _prune_and_recover(state: RunState, data: Any, recover: str, spec: TrainSpec,
                       **extra: Any) -> Any:
    """The teacher pruned in ``[student] steps``, each step recovered for its share of the
    epochs; every step prunes with the same function a ``prune`` stage does."""
    from distill.hf.io import is_hf_model
    from distill.prune import prune_and_recover

    pruned, teacher = state.recipe.student, state.setup.module
    settings = train_kwargs(spec)
    epochs = settings.pop("epochs")
    return prune_and_recover(
        teacher, data, ratio=pruned.ratio, method=pruned.method, steps=pruned.steps,
        recover=recover, importance=pruned.importance, eval=state.test,
        example_inputs=None if is_hf_model(teacher) else example_batch(data),
        epochs_per_step=max(1, epochs // pruned.steps), progress=state.progress,
        **settings, **extra,
    )


def pruned_student_step(state: RunState) -> None:
    """The teacher pruned, recovered by distillation from its unpruned self."""
    if reuse_distilled(state):
        return
    spec = state.recipe.student
    log.info("student: the teacher pruned (%s, ratio %g, %d step(s)), recovered by distillation",
             spec.method, spec.ratio, spec.steps)
    result = _prune_and_recover(state, state.student_train, "distill", state.recipe.train,
                                loss=_kd(state.recipe), checkpoint_dir=state.checkpoints)
    state.student, state.distilled = result.model, result
    state.histories["student"] = result.history


def pruned_baseline_step(state: RunState) -> None:
    """The same pruning recovered by fine-tuning on hard labels, at equal steps."""
    log.info("baseline: the same pruning, recovered by fine-tuning on hard labels")
    fitted = _prune_and_recover(state, state.student_train.labeled(), "finetune",
                                baseline_spec(state.recipe), description="baseline")
    state.baseline, state.histories["baseline"] = fitted.model, fitted.history


def pruned_evaluate_step(state: RunState) -> None:
    """The side-by-side measurement, plus how sparse the shipped student is, layer by layer."""
    from distill.prune import overall_sparsity, sparsity_report

    evaluate_step(state)
    student = state.final_student
    state.metrics["pruning"] = {
        "overall_sparsity": overall_sparsity(student),
        "layers": [{"name": r.name, "zeros": r.zeros, "total": r.total,
                    "sparsity": r.sparsity} for r in sparsity_report(student)],
    }


# --- self-distillation: ``[self_distill] method = "born-again"`` ------------------------------

def _make_student(recipe: Recipe, info: Any):
    return lambda: build_model(recipe.student, info, seed=None)


def born_again_teacher_step(state: RunState) -> None:
    """Generations 1 … N-1 of the student's architecture; the last of them teaches."""
    recipe, spec = state.recipe, state.recipe.self_distill
    log.info("born-again: %d generations of the student's architecture", spec.generations)
    state.generations = born_again(
        _make_student(recipe, state.train.info), state.student_train,
        generations=spec.generations - 1, eval=state.test, loss=_kd(recipe),
        progress=state.progress, **train_kwargs(recipe.train),
    )
    teacher = state.generations[-1]
    state.setup = TeacherSetup(teacher.student)
    state.histories["teacher"] = teacher.history


def born_again_student_step(state: RunState) -> None:
    """Generation N, distilled from generation N-1 (seeded as if trained in one sequence)."""
    recipe, generations = state.recipe, state.recipe.self_distill.generations
    settings = {**train_kwargs(recipe.train), "seed": recipe.train.seed + generations - 1}
    [last] = born_again(_make_student(recipe, state.train.info), state.student_train,
                        generations=1, teacher=state.setup.module, eval=state.test,
                        loss=_kd(recipe), progress=state.progress, **settings)
    last.metrics["generation"] = generations
    state.generations.append(last)
    state.student, state.distilled = last.student, last
    state.histories["student"] = last.history
    state.metrics["generations"] = [
        {"generation": r.metrics["generation"], "accuracy": r.metrics.get("accuracy")}
        for r in state.generations
    ]


def first_generation_baseline_step(state: RunState) -> None:
    """Generation 1 learned from labels alone: it is the hard-label baseline."""
    first: DistillResult = state.generations[0]
    state.baseline, state.histories["baseline"] = first.student, first.history


# --- self-distillation: ``[self_distill] method = "ema"`` -------------------------------------

def ema_teacher_step(state: RunState) -> None:
    """The student, and its moving average as its teacher."""
    recipe = state.recipe
    state.student = build_model(recipe.student, state.train.info, recipe.train.seed)
    state.signal = EMATeacher(state.student, decay=recipe.self_distill.decay)
    state.setup = TeacherSetup(state.signal.module)


def ema_student_step(state: RunState) -> None:
    """The student distilled from its own moving average, which follows it step by step."""
    recipe = state.recipe
    log.info("student: distilling from its moving average (decay %g, %d epochs)",
             recipe.self_distill.decay, recipe.train.epochs)
    state.distilled = distill(state.signal, state.student, state.student_train, eval=state.test,
                              loss=_kd(recipe), checkpoint_dir=state.checkpoints,
                              progress=state.progress, **train_kwargs(recipe.train))
    state.setup.module.eval()
    state.histories["student"] = state.distilled.history


# --- sentence embeddings: ``[loss] kind = "embedding"`` ---------------------------------------

def embedding_student_step(state: RunState) -> None:
    """The student learns the teacher's sentence embeddings of the training text (no labels);
    its agreement with the teacher before training is kept for the report."""
    from distill.hf import embed, embedding_agreement

    recipe, teacher = state.recipe, state.setup.module
    student = build_model(recipe.student, state.train.info, recipe.train.seed, teacher)
    held_out = state.test.unlabeled()
    before = embedding_agreement(embed(student, held_out), embed(teacher, held_out))
    loss = build_loss(recipe.loss, student, teacher)
    log.info("student: learning the teacher's sentence embeddings (%d epochs, %s)",
             recipe.train.epochs, recipe.loss.distance)
    state.distilled = distill(teacher, student, state.train.unlabeled(), loss=loss,
                              checkpoint_dir=state.checkpoints, progress=state.progress,
                              precompute_teacher=recipe.teacher.outputs == "precomputed",
                              **train_kwargs(recipe.train))
    state.student = student
    state.histories["student"] = state.distilled.history
    state.metrics["student_before_distillation"] = before


def embedding_evaluate_step(state: RunState) -> None:
    """Cosine agreement and nearest-neighbour overlap on held-out text, size and latency."""
    from distill.hf import compare_embeddings

    ev = state.recipe.evaluate
    measured = compare_embeddings(state.setup.module, state.student, state.test.unlabeled(),
                                  batch_sizes=ev.batch_sizes, threads=ev.threads,
                                  latency_repeats=ev.latency_repeats)
    state.metrics = {**measured, **state.metrics, "task": "sentence-embedding"}
    state.headline = {k: v for k, v in measured["student"].items()
                      if "@" in k or k == "cosine"}
