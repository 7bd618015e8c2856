"""Carrying out a recipe: teacher (trained once, then cached), student, baseline, report.

A run folder ends up with ``student/``, ``metrics.json``, ``report.md``, ``report.html``
and ``plots/``. Every file is written atomically and ``metrics.json`` last, so a folder with
``metrics.json`` is a complete run; a failed run leaves ``error.txt`` and its last good
checkpoint instead. The run itself is a list of steps (:mod:`distill.recipes.presets`).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from distill import atomic
from distill.engine import distributed
from distill.recipes.presets import run_steps, steps_for
from distill.recipes.schema import Recipe
from distill.recipes.stages import STAGES
from distill.recipes.steps import (
    RunState,
    _layer_map,  # noqa: F401 - importable from here, as it was
    distil_student,
    load_data,
)
from distill.recipes.teacher_setup import teacher_fingerprint
from distill.recipes.writing import environment

__all__ = [
    "RunFolderError",
    "RunState",
    "distil_student",
    "environment",
    "load_data",
    "prepare_folder",
    "run_recipe",
    "steps_for",
    "teacher_fingerprint",
]

FINAL_ARTIFACTS = ("metrics.json", "report.md", "report.html", "student", "plots", "error.txt")


class RunFolderError(FileExistsError):
    """The output folder already holds a run and overwriting was not asked for."""


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
    state = RunState(recipe, out, progress=progress, resume=resume, recipe_text=recipe_text)
    try:
        return run_steps(state)
    except BaseException as err:
        if distributed.is_main():
            atomic.write_text(out / "error.txt", f"{type(err).__name__}: {err}\n")
        raise
