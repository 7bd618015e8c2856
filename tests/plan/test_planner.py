"""The planner on digits: screen by latency, halve by held-out accuracy, measure finalists,
recommend a recipe, and that recipe reproduces the plan's numbers."""

from __future__ import annotations

import json

import pytest

from distill.cli import main
from distill.plan import candidates, choose, pareto
from distill.plan.search import SCREEN_SLACK
from distill.recipes import parse_recipe
from distill.recipes.loader import load_recipe
from distill.recipes.runner import run_recipe

RECIPE = {
    "name": "digits-plan",
    "data": {"dataset": "digits"},
    "teacher": {"arch": "cnn", "channels": [32, 64], "hidden": 128, "outputs": "precomputed",
                "train": {"epochs": 6, "lr": 1e-2}},
    "student": {"arch": "cnn", "channels": [8, 16], "hidden": 16},
    "train": {"epochs": 4, "batch_size": 64, "lr": 1e-2},
    "evaluate": {"latency_repeats": 20, "batch_sizes": [1]},
}


def test_candidates_scale_the_student_and_carry_their_deployment():
    pool = candidates(parse_recipe(RECIPE), widths=(0.5, 1.0), deploy=("pytorch fp32",
                                                                       "onnx int8"), prune=())
    assert [(c.width, c.deploy) for c in pool] == [(0.5, "pytorch fp32"), (0.5, "onnx int8"),
                                                    (1.0, "pytorch fp32"), (1.0, "onnx int8")]
    assert pool[0].student["channels"] == [4, 8] and pool[0].student["hidden"] == 8
    assert pool[1].stages == [{"kind": "export", "int8": "static"}]
    pruned = candidates(parse_recipe(RECIPE), widths=(1.0,), deploy=("onnx int8",),
                        prune=(0.5,))
    assert [c.name for c in pruned] == ["width 1, onnx int8", "width 1, pruned 50%, onnx int8"]
    assert pruned[1].stages == [{"kind": "prune", "method": "structured", "ratio": 0.5},
                                {"kind": "distill", "epochs": 1},  # a third of 4 epochs
                                {"kind": "export", "int8": "static"}]
    assert pruned[1].deploy_stages == [{"kind": "export", "int8": "static"}]
    with pytest.raises(ValueError, match="unknown deployment"):
        candidates(parse_recipe(RECIPE), deploy=("tensorrt",))


def test_the_frontier_drops_dominated_plans_and_the_choice_respects_every_limit():
    rows = [{"name": "a", "retention": 0.99, "latency_ms_p50": 1.0, "size_bytes": 100},
            {"name": "b", "retention": 0.98, "latency_ms_p50": 0.5, "size_bytes": 100},
            {"name": "c", "retention": 0.97, "latency_ms_p50": 0.6, "size_bytes": 120},
            {"name": "d", "retention": 0.90, "latency_ms_p50": 0.2, "size_bytes": 50}]
    assert [r["name"] for r in pareto(rows)] == ["d", "b", "a"]  # c: b beats it on all three
    assert choose(rows, {"max_latency_ms": 0.7})["name"] == "b"
    assert choose(rows, {"max_latency_ms": 0.7, "max_size_bytes": 60})["name"] == "d"
    assert choose(rows, {"max_latency_ms": 0.7, "min_retention": 0.985}) is None


def test_a_plan_recommends_a_recipe_that_reproduces_its_numbers(tmp_path, monkeypatch,
                                                                capsys):
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("DISTILL_CACHE", str(tmp_path / "cache"))
    base = tmp_path / "base.toml"
    import tomli_w

    base.write_text(tomli_w.dumps(RECIPE))
    code = main(["plan", str(base), "--min-speedup", "1.2", "--widths", "0.5", "1", "2",
                 "--deploy", "pytorch fp32", "onnx fp32", "--prune", "0", "0.5",
                 "--finalists", "1",
                 "--out", str(tmp_path / "plan"), "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0 and "recommended:" in printed
    result = json.loads((tmp_path / "plan" / "plan.json").read_text())
    assert set(result["screen"]) == {f"width {w}{p}, {d}" for w in ("0.5", "1", "2")
                                     for p in ("", ", pruned 50%")
                                     for d in ("pytorch fp32", "onnx fp32")}
    limit = result["budget"]["max_latency_ms"] * SCREEN_SLACK
    for screened in result["screen"].values():
        assert screened["passed"] == (screened["latency_ms_p50"] <= limit)
    widths = {float(r) for r in result["rungs"][0]["held_out_accuracy"]} if result["rungs"] \
        else set()
    if len(widths) == 3:  # 1 epoch, then 3: 3 -> 2 -> 1 (on a busy machine fewer may pass)
        assert [len(r["kept"]) for r in result["rungs"]] == [2, 1]
    assert result["recommended"] in result["frontier"]
    if any(r["deploy"].startswith("onnx") for r in result["finalists"]):  # both baselines
        teacher_onnx = result["teacher_onnx_fp32"]["latency_ms_p50"]
        for r in result["finalists"]:
            assert r["speedup_vs_onnx_teacher"] == pytest.approx(
                teacher_onnx / r["latency_ms_p50"])
    best = next(r for r in result["finalists"] if r["name"] == result["recommended"])
    assert best["latency_ms_p50"] <= result["budget"]["max_latency_ms"]
    page = (tmp_path / "plan" / "report.html").read_text()
    for section in ("budget", "pareto", "finalists", "search"):
        assert f'<section id="{section}">' in page

    recommended = load_recipe(tmp_path / "plan" / "recommended.toml")
    assert recommended.student.model_dump(mode="json", exclude_none=True) == best["student"]
    metrics = run_recipe(recommended, tmp_path / "run", progress=False)
    # the same training (seed, epochs, teacher outputs) and deployment: the same accuracy
    assert metrics["student"]["accuracy"] == pytest.approx(best["accuracy"], abs=0.005)
