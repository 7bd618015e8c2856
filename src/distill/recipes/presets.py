"""Which steps a recipe runs: one list, ``data → teacher → student → baseline → [[stages]] →
evaluate → write``, whose teacher, student, baseline and evaluate steps a preset chooses.

A pruned student, born-again generations, a moving-average teacher and sentence embeddings
are presets — rows of :data:`PRESETS` — chosen once, from the recipe, by :func:`preset_of`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from distill.engine import distributed
from distill.recipes.lm_steps import (
    lm_baseline_step,
    lm_evaluate_step,
    lm_export_step,
    lm_student_step,
    lm_teacher_step,
)
from distill.recipes.preset_steps import (
    born_again_student_step,
    born_again_teacher_step,
    ema_student_step,
    ema_teacher_step,
    embedding_evaluate_step,
    embedding_student_step,
    first_generation_baseline_step,
    pruned_baseline_step,
    pruned_evaluate_step,
    pruned_student_step,
)
from distill.recipes.schema import PrunedStudent, Recipe
from distill.recipes.steps import (
    RunState,
    baseline_step,
    distil_student_step,
    evaluate_step,
    load_data_step,
    stages_step,
    teacher_step,
)
from distill.recipes.writing import write_step

Step = Callable[[RunState], None]


@dataclass(frozen=True)
class Preset:
    """The steps that differ between kinds of run; the rest of the list is shared."""

    teacher: Step
    student: Step
    baseline: Step | None  # None: the preset has no hard-label counterpart
    evaluate: Step
    always_baseline: bool = False  # the baseline comes free: listed whatever [baseline] says
    export: Step | None = None  # files for other runtimes, when [export] asks for them


PRESETS: dict[str, Preset] = {
    "distill": Preset(teacher_step, distil_student_step, baseline_step, evaluate_step),
    "pruned": Preset(teacher_step, pruned_student_step, pruned_baseline_step,
                     pruned_evaluate_step),
    "born-again": Preset(born_again_teacher_step, born_again_student_step,
                         first_generation_baseline_step, evaluate_step, always_baseline=True),
    "ema": Preset(ema_teacher_step, ema_student_step, baseline_step, evaluate_step),
    "embedding": Preset(teacher_step, embedding_student_step, None, embedding_evaluate_step),
    "causal-lm": Preset(lm_teacher_step, lm_student_step, lm_baseline_step, lm_evaluate_step,
                        export=lm_export_step),
}

# measured and written by rank 0 alone under torchrun (every rank trains)
RANK_ZERO_ONLY = frozenset({evaluate_step, pruned_evaluate_step, embedding_evaluate_step,
                            lm_evaluate_step, lm_export_step, write_step})


def preset_of(recipe: Recipe) -> str:
    """The preset a recipe asks for (its name in :data:`PRESETS`)."""
    if recipe.resolved_task == "causal-lm":
        return "causal-lm"
    if recipe.loss.kind == "embedding":
        return "embedding"
    if recipe.self_distill is not None:
        return recipe.self_distill.method
    if isinstance(recipe.student, PrunedStudent):
        return "pruned"
    return "distill"


def steps_for(recipe: Recipe) -> list[Step]:
    """The steps ``recipe`` runs, in order."""
    preset = PRESETS[preset_of(recipe)]
    steps = [load_data_step, preset.teacher, preset.student]
    if preset.baseline is not None and (recipe.baseline.enabled or preset.always_baseline):
        steps.append(preset.baseline)
    if recipe.stages:
        steps.append(stages_step)
    exports = [preset.export] if preset.export is not None and recipe.export.gguf else []
    return [*steps, preset.evaluate, *exports, write_step]


def run_steps(state: RunState) -> dict[str, Any]:
    """Every step of the state's recipe in turn; what ``metrics.json`` holds (on rank 0)."""
    for step in steps_for(state.recipe):
        if step in RANK_ZERO_ONLY and not distributed.is_main():
            return {}
        step(state)
    return state.metrics
