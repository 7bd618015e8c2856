"""Running a recipe end to end on digits: the run folder, its metrics, the teacher cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import distill
from distill.recipes import RecipeError, parse_recipe
from distill.recipes.runner import RunFolderError, run_recipe, teacher_fingerprint
from distill.report.html import SECTIONS

RECIPE = {
    "name": "tiny",
    "data": {"dataset": "digits"},
    "teacher": {"arch": "cnn", "channels": [8, 16], "hidden": 32, "train": {"epochs": 4}},
    "student": {"arch": "mlp", "hidden": [8]},
    "loss": {"temperature": 2.0, "alpha": 0.5},
    "train": {"epochs": 3, "batch_size": 64},
    "baseline": {"enabled": True},
    "evaluate": {"latency_repeats": 5},
}
MODEL_KEYS = {"accuracy", "params", "size_bytes", "latency_ms_p50", "agreement", "kl_to_teacher"}


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, shared_cache):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DISTILL_CACHE", str(shared_cache))
        out = tmp_path_factory.mktemp("runs") / "tiny"
        metrics = run_recipe(parse_recipe(RECIPE), out, recipe_text="# tiny", progress=False)
    return out, metrics


def test_run_folder_holds_student_metrics_report_and_plots(finished_run):
    out, metrics = finished_run
    assert (out / "student" / "model.safetensors").is_file()
    assert (out / "student" / "config.json").is_file()
    for plot in ("accuracy_vs_latency.png", "training_curves.png"):
        assert (out / "plots" / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    assert "| student |" in report and "plots/accuracy_vs_latency.png" in report
    page = (out / "report.html").read_text()
    for section in SECTIONS:
        assert f'<section id="{section}">' in page
    assert page.count("data:image/png;base64,") == 5 and "# tiny" in page
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["retention"] == pytest.approx(metrics["retention"])
    for role in ("teacher", "student", "baseline"):
        assert set(on_disk[role]) >= MODEL_KEYS, role
    for key in ("retention", "speedup", "compression"):
        assert isinstance(on_disk[key], float)


def test_metrics_are_consistent(finished_run):
    _, m = finished_run
    assert m["retention"] == pytest.approx(m["student"]["accuracy"] / m["teacher"]["accuracy"])
    assert m["compression"] == pytest.approx(m["teacher"]["params"] / m["student"]["params"])
    assert m["speedup"] == pytest.approx(
        m["teacher"]["latency_ms_p50"] / m["student"]["latency_ms_p50"]
    )
    assert m["teacher"]["agreement"] == 1.0
    assert m["student"]["params"] == m["baseline"]["params"]
    assert len(m["history"]["student"]) == 3


def test_saved_student_reloads_with_the_reported_accuracy(finished_run):
    out, metrics = finished_run
    from distill.data import load_digits
    from distill.evaluate import accuracy, predict

    student = distill.load(out / "student")
    pred = predict(student, load_digits("test"))
    assert accuracy(pred.logits, pred.labels) == pytest.approx(metrics["student"]["accuracy"])


def test_existing_run_is_not_overwritten_without_force(finished_run):
    out, _ = finished_run
    before = (out / "metrics.json").read_text()
    with pytest.raises(RunFolderError, match="--force"):
        run_recipe(parse_recipe(RECIPE), out, progress=False)
    assert (out / "metrics.json").read_text() == before


def test_teacher_is_cached_and_reused(finished_run, shared_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILL_CACHE", str(shared_cache))
    recipe = parse_recipe(RECIPE)
    cached = Path(shared_cache) / "teachers" / teacher_fingerprint(recipe)
    assert (cached / "config.json").is_file()
    again = run_recipe(recipe, tmp_path / "again", progress=False)
    assert again["history"]["teacher"] == []  # loaded, not retrained
    assert again["teacher"]["accuracy"] == finished_run[1]["teacher"]["accuracy"]
    changed = parse_recipe({**RECIPE, "teacher": {**RECIPE["teacher"], "hidden": 16}})
    assert teacher_fingerprint(changed) != teacher_fingerprint(recipe)
    train = {**RECIPE["teacher"]["train"], "threads": 2, "checkpoint_steps": 5}
    same = parse_recipe({**RECIPE, "teacher": {**RECIPE["teacher"], "train": train,
                                               "outputs": "precomputed"}})
    assert teacher_fingerprint(same) == teacher_fingerprint(recipe)


def test_a_setting_added_later_leaves_cached_teachers_where_they_were():
    """The fingerprint this recipe's teacher had before checkpoint_steps was added (which first
    moved it): a user's cached teachers, hours of fine-tuning for a language model, stay valid
    when a training setting is added at its default or changes nothing in the weights."""
    assert teacher_fingerprint(parse_recipe(RECIPE)) == "6bf627b493e4c98d"


def test_precomputed_teacher_outputs_from_a_recipe(tmp_path):
    recipe = parse_recipe({**RECIPE, "teacher": {**RECIPE["teacher"], "outputs": "precomputed"}})
    metrics = run_recipe(recipe, tmp_path / "pre", progress=False)
    assert 0 < metrics["student"]["agreement"] <= 1
    augmented = {**RECIPE["train"], "augment": "flip-shift"}
    with pytest.raises(RecipeError, match=r"outputs = 'precomputed' cannot follow \[train\]"):
        parse_recipe({**RECIPE, "train": augmented,
                      "teacher": {**RECIPE["teacher"], "outputs": "precomputed"}})


def test_cached_teacher_outputs_from_a_recipe(tmp_path, shared_cache, finished_run,
                                             monkeypatch):
    monkeypatch.setenv("DISTILL_CACHE", str(shared_cache))
    teacher = {**RECIPE["teacher"], "outputs": "cached", "top_k": 3,
               "cache_path": str(tmp_path / "outputs")}
    recipe = parse_recipe({**RECIPE, "teacher": teacher})
    assert teacher_fingerprint(recipe) == teacher_fingerprint(parse_recipe(RECIPE))
    metrics = run_recipe(recipe, tmp_path / "cached", progress=False)
    assert 0 < metrics["student"]["agreement"] <= 1
    cache = distill.CachedTeacher(tmp_path / "outputs")
    assert cache.kind == "topk" and cache.rows == 1438
    # a second run reads the same cache (same files, untouched)
    stamp = (tmp_path / "outputs" / "manifest.json").stat().st_mtime_ns
    run_recipe(recipe, tmp_path / "again", progress=False)
    assert (tmp_path / "outputs" / "manifest.json").stat().st_mtime_ns == stamp


def test_cache_options_need_cached_outputs():
    with pytest.raises(RecipeError, match="top_k only apply with outputs = 'cached'"):
        parse_recipe({**RECIPE, "teacher": {**RECIPE["teacher"], "top_k": 5}})
    augmented = {**RECIPE["train"], "augment": "flip-shift"}
    with pytest.raises(RecipeError, match=r"outputs = 'cached' cannot follow \[train\]"):
        parse_recipe({**RECIPE, "train": augmented,
                      "teacher": {**RECIPE["teacher"], "outputs": "cached"}})


def test_ensemble_teacher_from_a_recipe(tmp_path, shared_cache, finished_run, monkeypatch):
    monkeypatch.setenv("DISTILL_CACHE", str(shared_cache))
    single = distill.load(finished_run[1]["teacher_path"])
    distill.save(single, tmp_path / "saved")
    member = {k: v for k, v in RECIPE["teacher"].items()}
    teacher = {"arch": "ensemble", "combine": "logits", "weights": [1, 3],
               "members": [member, {"path": str(tmp_path / "saved")}]}
    recipe = parse_recipe({**RECIPE, "teacher": teacher})
    metrics = run_recipe(recipe, tmp_path / "ens", progress=False)
    # the trained member is the cached teacher of the first run: reused, not retrained
    assert metrics["history"]["teacher"] == []
    assert [m["path"] for m in metrics["teacher_members"]] == [
        finished_run[1]["teacher_path"], str(tmp_path / "saved")]
    # measured as one model: both members' parameters
    assert metrics["teacher"]["params"] == 2 * finished_run[1]["teacher"]["params"]
    # two copies of one teacher, combined: the same predictions as that teacher
    assert metrics["teacher"]["accuracy"] == pytest.approx(finished_run[1]["teacher"]["accuracy"])
    with pytest.raises(RecipeError, match="1 weights for 2 members"):
        parse_recipe({**RECIPE, "teacher": {**teacher, "weights": [1]}})
    with pytest.raises(RecipeError, match="at least 2"):
        parse_recipe({**RECIPE, "teacher": {**teacher, "members": [member]}})


@pytest.mark.parametrize("method", ["born-again", "ema"])
def test_self_distillation_from_a_recipe(tmp_path, method):
    recipe = {k: v for k, v in RECIPE.items() if k != "teacher"}
    recipe["self_distill"] = {"method": method, "generations": 3}
    metrics = run_recipe(parse_recipe(recipe), tmp_path / method, progress=False)
    assert {"teacher", "student", "baseline", "retention"} <= set(metrics)
    assert metrics["teacher"]["params"] == metrics["student"]["params"]
    if method == "born-again":
        assert [g["generation"] for g in metrics["generations"]] == [1, 2, 3]
        assert metrics["baseline"]["accuracy"] == pytest.approx(
            metrics["generations"][0]["accuracy"])
        assert metrics["student"]["accuracy"] == pytest.approx(
            metrics["generations"][2]["accuracy"])


def test_teacher_or_self_distillation_but_not_both():
    with pytest.raises(RecipeError, match="give a \\[teacher\\] table, or a \\[self_distill\\]"):
        parse_recipe({k: v for k, v in RECIPE.items() if k != "teacher"})
    with pytest.raises(RecipeError, match="remove the \\[teacher\\] table"):
        parse_recipe({**RECIPE, "self_distill": {"method": "ema"}})
    with pytest.raises(RecipeError, match="generations"):
        parse_recipe({**{k: v for k, v in RECIPE.items() if k != "teacher"},
                      "self_distill": {"method": "born-again", "generations": 1}})


def test_an_unlabeled_transfer_set_from_a_recipe(tmp_path, shared_cache, finished_run,
                                                monkeypatch):
    monkeypatch.setenv("DISTILL_CACHE", str(shared_cache))
    recipe = {**RECIPE, "data": {"dataset": "digits", "labeled": 0},
              "train": {**RECIPE["train"], "epochs": 10}, "baseline": {"enabled": False}}
    metrics = run_recipe(parse_recipe(recipe), tmp_path / "unlabeled", progress=False)
    assert metrics["student"]["agreement"] > 0.5  # learned from the teacher's targets alone
    with pytest.raises(RecipeError, match="labeled = 0 leaves no labels to train the"):
        parse_recipe({**recipe, "baseline": {"enabled": True}})


def test_diverging_run_leaves_error_and_checkpoint_but_no_metrics(tmp_path):
    recipe = parse_recipe({
        **RECIPE,
        "train": {"epochs": 3, "batch_size": 64, "lr": 1e12, "optimizer": "sgd"},
    })
    with pytest.raises(distill.NonFiniteLossError):
        run_recipe(recipe, tmp_path / "bad", progress=False)
    out = tmp_path / "bad"
    assert not (out / "metrics.json").exists()
    assert not (out / "student").exists()
    assert "NonFiniteLossError" in (out / "error.txt").read_text()
    assert (out / "checkpoints" / "student" / "checkpoint.safetensors").is_file()


def test_scarce_labels_train_the_baseline_on_labeled_samples_only(tmp_path):
    recipe = parse_recipe({**RECIPE, "data": {"dataset": "digits", "labeled": 100}})
    metrics = run_recipe(recipe, tmp_path / "scarce", progress=False)
    baseline_epoch = metrics["history"]["baseline"][0]
    student_epoch = metrics["history"]["student"][0]
    # 100 labeled samples vs the whole transfer set: the baseline sees far fewer per epoch
    assert baseline_epoch["samples_per_s"] * baseline_epoch["seconds"] == pytest.approx(100)
    assert student_epoch["samples_per_s"] * student_epoch["seconds"] > 1000


def test_resume_removes_what_killed_writes_left_and_keeps_the_rest(tmp_path):
    from distill.recipes.runner import prepare_folder

    out = tmp_path / "run"
    stage = out / "stages" / "01-prune"
    stage.mkdir(parents=True)
    (stage / "stage.json").write_text("{}")
    (out / ".metrics.json.x1y2.tmp").write_text("half")
    (out / ".student.a1b2.tmp").mkdir()
    (out / ".student.old-4242").mkdir()
    (stage / ".model.c3d4.tmp").mkdir()
    prepare_folder(out, force=False, resume=True)
    assert sorted(p.name for p in out.iterdir()) == ["stages"]
    assert sorted(p.name for p in stage.iterdir()) == ["stage.json"]
