"""`make demo`'s recipe and its shipped teacher stay consistent: the pinned sha256 is the
weights file's, and the student it builds is at least 10x smaller than that teacher."""

from __future__ import annotations

from pathlib import Path

import distill
from distill.data import DatasetInfo
from distill.evaluate.size import count_parameters
from distill.recipes.building import build_model
from distill.recipes.loader import load_recipe

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_recipe_pins_the_shipped_teacher_and_a_10x_smaller_student():
    recipe = load_recipe(ROOT / "recipes" / "demo.toml")
    assert recipe.teacher.path == ROOT / "models" / "fashion-mnist-teacher"
    teacher = distill.load(recipe.teacher.path, sha256=recipe.teacher.sha256)
    student = build_model(recipe.student, DatasetInfo("fashion-mnist", (1, 28, 28), 10), seed=0)
    assert count_parameters(teacher) / count_parameters(student) >= 10
    assert recipe.data.labeled == 1000 and recipe.baseline.enabled
    assert [s.kind for s in recipe.stages] == ["export"]
