"""A recipe whose student is the teacher pruned, recovered by distillation against fine-tuning."""

from __future__ import annotations

import pytest

import distill
from distill.evaluate.size import count_parameters
from distill.recipes import RecipeError, parse_recipe
from distill.recipes.runner import run_recipe

pytest.importorskip("torch_pruning")

RECIPE = {
    "name": "pruned",
    "data": {"dataset": "digits"},
    "teacher": {"arch": "cnn", "channels": [16, 32], "hidden": 32,
                "train": {"epochs": 12, "lr": 1e-2}},
    "student": {"arch": "pruned", "method": "structured", "ratio": 0.75, "steps": 2},
    "loss": {"temperature": 2.0, "alpha": 0.5},
    "train": {"epochs": 4, "batch_size": 64, "lr": 1e-2},
    "baseline": {"enabled": True},
    "evaluate": {"latency_repeats": 5},
}


def test_the_pruned_teacher_is_recovered_saved_and_compared(tmp_path):
    metrics = run_recipe(parse_recipe(RECIPE), tmp_path / "run", progress=False)
    assert metrics["compression"] > 5  # 75% of the channels gone, in both conv layers
    assert metrics["student"]["params"] == metrics["baseline"]["params"]
    assert metrics["teacher"]["accuracy"] > 0.9
    assert metrics["student"]["accuracy"] > 0.5  # 2 recovery epochs per step: far from done
    steps = {r["prune_step"] for r in metrics["history"]["student"]}
    assert steps == {1, 2} and len(metrics["history"]["baseline"]) == 4
    student = distill.load(tmp_path / "run" / "student")
    assert count_parameters(student) == metrics["student"]["params"]


def test_masks_from_a_recipe_are_saved_as_zeros(tmp_path):
    recipe = {**RECIPE, "student": {"arch": "pruned", "method": "magnitude", "ratio": 0.7},
              "baseline": {"enabled": False}, "train": {"epochs": 1, "batch_size": 64}}
    metrics = run_recipe(parse_recipe(recipe), tmp_path / "run", progress=False)
    student = distill.load(tmp_path / "run" / "student")
    assert distill.prune.overall_sparsity(student) == pytest.approx(0.7, abs=0.01)
    assert metrics["pruning"]["overall_sparsity"] == pytest.approx(0.7, abs=0.01)
    assert [layer["name"] for layer in metrics["pruning"]["layers"]] == ["0", "4", "9", "11"]
    assert "| 4 | 4,608 |" in (tmp_path / "run" / "report.md").read_text()


@pytest.mark.parametrize("change,message", [
    ({"student": {"arch": "pruned", "steps": 5}}, "needs at least as many"),
    ({"student": {"arch": "pruned", "ratio": 1.0}}, "less than 1"),
    ({"teacher": None, "self_distill": {"method": "ema"}}, "prunes the teacher"),
])
def test_inconsistent_pruning_recipes_are_refused(change, message):
    recipe = {k: v for k, v in {**RECIPE, **change}.items() if v is not None}
    with pytest.raises(RecipeError, match=message):
        parse_recipe(recipe)
