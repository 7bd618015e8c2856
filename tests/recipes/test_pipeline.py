"""Pipelines: distill → prune → distill → quantize (or export), each stage checkpointed,
finished stages reused by a rerun with --resume."""

from __future__ import annotations

import json
import shutil

import pytest

import distill
from distill.evaluate import classification_metrics, predict
from distill.recipes import RecipeError, parse_recipe
from distill.recipes.runner import RunFolderError, run_recipe

pytest.importorskip("torch_pruning")

RECIPE = {
    "name": "pipeline",
    "data": {"dataset": "digits"},
    "teacher": {"arch": "cnn", "channels": [16, 32], "hidden": 32,
                "train": {"epochs": 8, "lr": 1e-2}},
    "student": {"arch": "cnn", "channels": [8, 16], "hidden": 16},
    "train": {"epochs": 3, "batch_size": 64, "lr": 1e-2},
    "evaluate": {"latency_repeats": 3},
    "stages": [
        {"kind": "prune", "method": "structured", "ratio": 0.5},
        {"kind": "distill", "epochs": 2},
        {"kind": "quantize", "method": "static", "calibration_batches": 4},
    ],
}
KINDS = ["00-distill", "01-prune", "02-distill", "03-quantize"]


def _accuracy(model, data) -> float:
    pred = predict(model, data)
    return classification_metrics(pred.logits, pred.labels)["accuracy"]


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "pipeline"
    return out, run_recipe(parse_recipe(RECIPE), out, progress=False)


def test_every_stage_is_checkpointed_measured_and_the_last_one_ships(pipeline_run):
    out, metrics = pipeline_run
    assert sorted(p.name for p in (out / "stages").iterdir()) == KINDS
    for kind in KINDS:
        assert (out / "stages" / kind / "stage.json").is_file()
    assert [s["name"] for s in metrics["stages"]] == ["distill", "prune structured 50%",
                                                      "distill 2 epochs"]
    distilled, pruned, recovered = metrics["stages"]
    assert pruned["params"] < 0.5 * distilled["params"]
    assert recovered["params"] == pruned["params"]
    assert recovered["accuracy"] > pruned["accuracy"]  # the recovery did something
    assert len(metrics["history"]["stage 2: distill 2 epochs"]) == 2
    student = distill.load(out / "student")
    assert student.distill_quantization["kind"] == "static-int8"
    test = distill.data.load_dataset("digits", "test")
    assert _accuracy(student, test) == pytest.approx(metrics["student"]["accuracy"])
    page = (out / "report.html").read_text()
    assert "stage 1: prune structured 50%" in page and "stage 2: distill 2 epochs" in page


def test_a_rerun_with_resume_skips_finished_stages_and_reruns_what_changed(pipeline_run,
                                                                            tmp_path):
    out, first = pipeline_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    with pytest.raises(RunFolderError, match="--resume"):
        run_recipe(parse_recipe(RECIPE), copy, progress=False)
    again = run_recipe(parse_recipe(RECIPE), copy, resume=True, progress=False)
    assert [s["reused"] for s in again["pipeline"]] == [True, True, True]
    assert again["student"]["accuracy"] == first["student"]["accuracy"]
    assert again["history"]["student"] == first["history"]["student"]  # stage 0 reused too

    changed = json.loads(json.dumps(RECIPE))
    changed["stages"][1]["epochs"] = 1  # the recovery: it and what follows rerun
    third = run_recipe(parse_recipe(changed), copy, resume=True, progress=False)
    assert [s["reused"] for s in third["pipeline"]] == [True, False, False]
    assert len(third["history"]["stage 2: distill 1 epochs"]) == 1

    (copy / "stages" / "01-prune" / "stage.json").unlink()  # as if killed inside stage 1
    fourth = run_recipe(parse_recipe(changed), copy, resume=True, progress=False)
    assert [s["reused"] for s in fourth["pipeline"]] == [False, False, False]


def test_an_export_stage_ships_the_onnx_runtime_student(tmp_path):
    pytest.importorskip("onnxruntime")
    recipe = {**RECIPE, "stages": [{"kind": "export", "int8": "static",
                                    "calibration_batches": 4}]}
    metrics = run_recipe(parse_recipe(recipe), tmp_path / "run", progress=False)
    student = distill.load(tmp_path / "run" / "student")
    assert type(student).__name__ == "OnnxModel"
    assert metrics["stages"][0]["name"] == "distill"
    assert metrics["student"]["accuracy"] >= 0.9 * metrics["stages"][0]["accuracy"]
    check = metrics["pipeline"][0]["export_check"]  # the whole test set, both runtimes
    assert check["int8"] and check["samples"] == metrics["student"]["test_samples"]
    assert check["accuracy_pytorch"] == pytest.approx(metrics["stages"][0]["accuracy"])
    assert check["accuracy_exported"] == pytest.approx(metrics["student"]["accuracy"])


def test_an_fp32_export_that_computes_something_else_is_refused():
    from distill.recipes.stages import export_check

    torch = pytest.importorskip("torch")
    data = distill.data.ArrayDataset(torch.randn(200, 4), torch.randint(0, 3, (200,)),
                                     distill.data.DatasetInfo("t", (4,), 3))
    model = torch.nn.Linear(4, 3)
    same = export_check(model, model, data, int8=False)
    assert same["agreement"] == 1.0 and same["fp32_agreement_required"] == 0.999
    other = torch.nn.Linear(4, 3)
    with pytest.raises(ValueError, match="agrees with PyTorch on .*% of the 200 test samples"):
        export_check(model, other, data, int8=False)
    assert export_check(model, other, data, int8=True)["agreement"] < 1.0  # int8: recorded


@pytest.mark.parametrize("stages,message", [
    ([{"kind": "export"}, {"kind": "distill"}], "stage #1 \\(export"),
    ([{"kind": "quantize", "method": "dynamic"}, {"kind": "prune"}], "quantize 'dynamic'"),
    ([{"kind": "quantize", "method": "qat"}, {"kind": "export", "int8": "static"}],
     "only a Hugging Face student's 'qat'"),
    ([{"kind": "shrink"}], "stages"),
    ([{"kind": "prune", "ratio": 1.5}], "ratio"),
])
def test_impossible_pipelines_are_refused_with_the_stage_named(stages, message):
    with pytest.raises(RecipeError, match=message):
        parse_recipe({**RECIPE, "stages": stages})
