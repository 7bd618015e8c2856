"""The run as a list of steps: which steps each kind of recipe runs, and a step on its own."""

from __future__ import annotations

import json

import pytest

import distill
from distill.recipes import parse_recipe
from distill.recipes.presets import preset_of, steps_for
from distill.recipes.runner import RunState, distil_student, load_data, run_recipe
from distill.recipes.steps import (
    distil_student_step,
    evaluate_step,
    load_data_step,
    teacher_step,
)

RECIPE = {
    "data": {"dataset": "digits"},
    "teacher": {"arch": "mlp", "hidden": [16], "train": {"epochs": 1}, "cache": False},
    "student": {"arch": "mlp", "hidden": [8]},
    "train": {"epochs": 1, "batch_size": 64},
    "evaluate": {"latency_repeats": 2, "batch_sizes": [1]},
}
WITHOUT_TEACHER = {k: v for k, v in RECIPE.items() if k != "teacher"}
EMBEDDING = {
    "data": {"dataset": "rotten-tomatoes"},
    "teacher": {"arch": "hf", "model": "x", "task": "sentence-embedding"},
    "student": {"arch": "hf-scratch", "config": {"num_hidden_layers": 2}},
    "loss": {"kind": "embedding"},
}
SHARED_HEAD, SHARED_TAIL = ["load_data_step"], ["write_step"]


def _names(recipe: dict) -> list[str]:
    return [step.__name__ for step in steps_for(parse_recipe(recipe))]


@pytest.mark.parametrize("recipe,preset,middle", [
    (RECIPE, "distill", ["teacher_step", "distil_student_step", "evaluate_step"]),
    ({**RECIPE, "baseline": {"enabled": True},
      "stages": [{"kind": "quantize", "method": "dynamic"}]}, "distill",
     ["teacher_step", "distil_student_step", "baseline_step", "stages_step", "evaluate_step"]),
    ({**RECIPE, "student": {"arch": "pruned", "ratio": 0.5}, "baseline": {"enabled": True}},
     "pruned", ["teacher_step", "pruned_student_step", "pruned_baseline_step",
                "pruned_evaluate_step"]),
    ({**RECIPE, "student": {"arch": "pruned"}, "stages": [{"kind": "distill"}]}, "pruned",
     ["teacher_step", "pruned_student_step", "stages_step", "pruned_evaluate_step"]),
    ({**WITHOUT_TEACHER, "self_distill": {"method": "born-again", "generations": 3}},
     "born-again",  # generation 1 is the baseline, [baseline] or not
     ["born_again_teacher_step", "born_again_student_step", "first_generation_baseline_step",
      "evaluate_step"]),
    ({**WITHOUT_TEACHER, "self_distill": {"method": "ema"}, "baseline": {"enabled": True}},
     "ema", ["ema_teacher_step", "ema_student_step", "baseline_step", "evaluate_step"]),
    (EMBEDDING, "embedding",
     ["teacher_step", "embedding_student_step", "embedding_evaluate_step"]),
])
def test_each_preset_runs_the_shared_steps_with_its_own(recipe, preset, middle):
    assert preset_of(parse_recipe(recipe)) == preset
    assert _names(recipe) == SHARED_HEAD + middle + SHARED_TAIL


def test_steps_can_be_called_one_by_one_as_the_planner_does(tmp_path):
    state = RunState(parse_recipe(RECIPE), tmp_path, progress=False)
    load_data_step(state)
    assert state.student_train is state.train and state.loaded.preprocessing is None
    assert state.data_records == {"class_names": [str(d) for d in range(10)]}
    teacher_step(state)
    distil_student_step(state)
    assert len(state.histories["student"]) == 1 and state.baseline is None
    evaluate_step(state)
    assert state.metrics["student"]["accuracy"] == state.headline["accuracy"]
    assert not (tmp_path / "metrics.json").exists()  # nothing written until the writer runs

    # the same functions by their old names, as the planner and the CLI import them
    train, test, tokenizer = load_data(state.recipe)
    assert len(train) == len(state.train) and tokenizer is None
    student, result = distil_student(state.recipe, state.setup, train.info, train, test, None,
                                     False)
    assert result.student is student and len(result.history) == 1


def test_the_run_records_its_data_in_metrics_and_in_the_saved_student(tmp_path):
    pytest.importorskip("pyarrow")
    from sklearn.datasets import load_wine

    wine = load_wine(as_frame=True).frame
    wine["target"] = wine["target"].map({0: "barolo", 1: "grignolino", 2: "barbera"})
    wine.to_csv(tmp_path / "wine.csv", index=False)
    data = {"format": "table", "path": str(tmp_path / "wine.csv"), "test_fraction": 0.3,
            "label_column": "target", "feature_columns": "all-numeric"}
    recipe = parse_recipe({**RECIPE, "data": data})
    metrics = run_recipe(recipe, tmp_path / "run", progress=False)
    recorded = metrics["data"]
    assert recorded["format"] == "table" and recorded["preprocessing"]["kind"] == "tabular"
    assert sorted(recorded["class_names"]) == ["barbera", "barolo", "grignolino"]
    student = tmp_path / "run" / "student"
    assert distill.artifacts.read_preprocessing(student) == recorded["preprocessing"]
    saved = distill.artifacts.read_metadata(student)
    assert saved["class_names"] == recorded["class_names"]
    assert saved["accuracy"] == metrics["student"]["accuracy"]
    on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert on_disk["data"] == recorded


def test_a_pruned_student_is_stage_0_and_resumes_like_any_other(tmp_path):
    pytest.importorskip("torch_pruning")
    recipe = parse_recipe({**RECIPE, "student": {"arch": "pruned", "ratio": 0.5},
                           "stages": [{"kind": "quantize", "method": "dynamic"}]})
    first = run_recipe(recipe, tmp_path / "run", progress=False)
    assert first["stages"][0]["params"] < first["teacher"]["params"]  # stage 0: pruned
    again = run_recipe(recipe, tmp_path / "run", resume=True, progress=False)
    assert [s["reused"] for s in again["pipeline"]] == [True]
    assert again["history"]["student"] == first["history"]["student"]  # not pruned again
    assert again["student"]["accuracy"] == first["student"]["accuracy"]


def test_a_resumed_run_continues_its_baseline_from_the_baseline_checkpoint(tmp_path):
    recipe = parse_recipe({**RECIPE, "baseline": {"enabled": True}})
    first = run_recipe(recipe, tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "checkpoints" / "baseline" / "checkpoint.safetensors").is_file()
    again = run_recipe(recipe, tmp_path / "run", resume=True, progress=False)
    # the history read back, epoch times included: the finished baseline was not trained again
    assert again["history"]["baseline"] == first["history"]["baseline"]
    assert again["baseline"]["accuracy"] == first["baseline"]["accuracy"]
