"""The planner on a Hugging Face text classifier: blocks kept × MLP cut × deployment, screened
by latency, halved by held-out accuracy, the finalists measured; its recommended recipe runs."""

from __future__ import annotations

import json

import pytest

from distill.cli import main
from distill.plan import candidates
from distill.recipes import parse_recipe


def _recipe(folder: str) -> dict:
    return {
        "name": "reviews-plan",
        "data": {"format": "table", "path": "reviews.csv", "text_column": "review",
                 "label_column": "sentiment", "test_fraction": 0.25, "max_length": 16},
        "teacher": {"arch": "hf", "model": folder, "outputs": "precomputed",
                    "finetune": {"epochs": 3, "batch_size": 16, "lr": 0.01}},
        "student": {"arch": "hf-layers"},
        "train": {"epochs": 3, "batch_size": 16, "lr": 0.01},
        "evaluate": {"latency_repeats": 5, "batch_sizes": [1]},
    }


def test_text_candidates_cut_blocks_neurons_and_deploy_each_way():
    recipe = parse_recipe(_recipe("teacher"))
    pool = candidates(recipe, teacher_blocks=6, blocks=(3, 2), prune=(0.5,),
                      deploy=("pytorch fp32", "onnx int8"))
    assert [c.name for c in pool] == [
        "3 blocks, pytorch fp32", "3 blocks, onnx int8", "3 blocks, MLP 50%, pytorch fp32",
        "3 blocks, MLP 50%, onnx int8", "2 blocks, pytorch fp32", "2 blocks, onnx int8",
        "2 blocks, MLP 50%, pytorch fp32", "2 blocks, MLP 50%, onnx int8"]
    assert pool[0].student == {"arch": "hf-layers", "layers": [0, 2, 4]}
    assert pool[4].student["layers"] == [0, 3]
    assert pool[3].stages == [{"kind": "prune", "method": "structured", "ratio": 0.5},
                              {"kind": "distill", "epochs": 1},
                              {"kind": "export", "int8": "dynamic"}]
    assert pool[3].deploy_stages == [{"kind": "export", "int8": "dynamic"}]
    assert {c.shape for c in pool} == {"3 blocks", "2 blocks"}
    default = candidates(recipe, teacher_blocks=6, prune=(), deploy=("pytorch fp32",))
    assert [c.label for c in default] == ["3 blocks", "2 blocks", "1 block"]
    heads = candidates(recipe, teacher_blocks=4, blocks=(2,), prune=(), heads=(0.5,),
                       deploy=("pytorch fp32",))
    assert heads[1].stages[0] == {"kind": "prune", "method": "structured", "ratio": 0.5,
                                  "target": "heads"} and heads[1].name.endswith("heads 50%, "
                                                                               "pytorch fp32")
    trimmed = candidates(recipe, teacher_blocks=6, blocks=(2,), prune=(),
                         deploy=("onnx int8, trimmed vocabulary",))
    assert trimmed[0].stages == [{"kind": "export", "int8": "dynamic", "trim_vocabulary": True}]
    chosen = candidates(recipe, teacher_blocks=6, blocks=(3, 1), prune=(),
                        deploy=("pytorch fp32",), block_choice=("every-other", "first",
                                                                "importance"),
                        importance=[0.1, 0.5, 0.2, 0.9, 0.3, 0.4])
    # first 1 block is every-other's [0]: listed once
    assert [(c.label, c.student["layers"]) for c in chosen] == [
        ("3 blocks", [0, 2, 4]), ("first 3 blocks", [0, 1, 2]),
        ("3 blocks by importance", [1, 3, 5]), ("1 block", [0]),
        ("1 block by importance", [3])]
    with pytest.raises(ValueError, match="needs a score per teacher block"):
        candidates(recipe, teacher_blocks=6, block_choice=("importance",))
    with pytest.raises(ValueError, match="blocks must be between 1 and the teacher's 6"):
        candidates(recipe, teacher_blocks=6, blocks=(7,))
    with pytest.raises(ValueError, match="unknown deployment"):
        candidates(recipe, teacher_blocks=6, deploy=("pytorch int4",))


def test_a_text_plan_recommends_a_recipe_that_runs(tmp_path, make_word_tokenizer, make_bert,
                                                   snippets, monkeypatch, capsys):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("DISTILL_CACHE", str(tmp_path / "cache"))
    texts, labels = snippets[0][:120], snippets[1][:120]
    tokenizer = make_word_tokenizer(texts)
    make_bert(layers=4, hidden=32, heads=2, vocab_size=len(tokenizer)).save_pretrained(
        tmp_path / "teacher")
    tokenizer.save_pretrained(tmp_path / "teacher")
    pd.DataFrame({"review": texts, "sentiment": labels}).to_csv(tmp_path / "reviews.csv",
                                                                  index=False)
    import tomli_w

    (tmp_path / "base.toml").write_text(tomli_w.dumps(_recipe("teacher")))
    # a budget every candidate meets: this test is about the text grid, the halving and the
    # recommended recipe; the budget's logic is tested on images (tests/plan)
    code = main(["plan", str(tmp_path / "base.toml"), "--max-latency-ms", "10000", "--blocks", "2",
                 "1", "--prune", "0", "0.5", "--deploy", "pytorch fp32", "pytorch int8",
                 "--finalists", "1", "--out", str(tmp_path / "plan"), "--no-progress"])
    captured = capsys.readouterr()
    printed = captured.out
    assert code == 0, captured.err
    result = json.loads((tmp_path / "plan" / "plan.json").read_text())
    assert set(result["screen"]) == {f"{b}{m}, {d}" for b in ("2 blocks", "1 block")
                                     for m in ("", ", MLP 50%")
                                     for d in ("pytorch fp32", "pytorch int8")}
    assert [len(r["kept"]) for r in result["rungs"]] == [1]  # 2 shapes halved to 1 finalist
    assert len(result["finalists"]) == 4 and result["recommended"] in result["frontier"]
    best = next(r for r in result["finalists"] if r["name"] == result["recommended"])
    assert best["label"] in ("2 blocks", "1 block")
    assert result["cpu"] in printed and "thread(s)" in printed  # the machine beside the table
    assert result["teacher_onnx_fp32"] is None  # no ONNX deployment among the finalists
    assert main(["run", str(tmp_path / "plan" / "recommended.toml"), "--out",
                 str(tmp_path / "run"), "--quiet"]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["student"]["accuracy"] == pytest.approx(best["accuracy"], abs=0.03)


def test_screening_exports_a_qat_candidate_without_training_it(tmp_path, make_bert, tokenizer,
                                                               reviews, monkeypatch):
    """Latency only: the QAT student exports to the same int8 graph, so the screen skips its
    epoch of training (and every distillation)."""
    pytest.importorskip("onnxruntime")
    from distill.plan import search

    train, test = reviews
    teacher = make_bert(layers=2)
    recipe = parse_recipe(_recipe("teacher"))
    qat = candidates(recipe, teacher_blocks=2, blocks=(1,), prune=(0.5,),
                     deploy=("onnx int8, QAT",))[-1]
    assert [s["kind"] for s in qat.stages] == ["prune", "distill", "quantize", "export"]
    monkeypatch.setattr("distill.recipes.stages.distill", lambda *a, **k: pytest.fail("trained"))
    from distill.hf import keep_layers

    deployed = search._apply(qat, qat.stages, keep_layers(teacher, [0]), recipe, teacher,
                             train, test, tmp_path, train_stages=False)
    assert type(deployed).__name__ == "OnnxModel" and deployed.config["int8"] == "dynamic"


def test_a_budget_nobody_meets_names_the_closest_and_what_they_miss_by():
    from distill.plan.frontier import closest

    result = {"budget": {"max_latency_ms": 2.0, "max_size_bytes": None, "min_retention": 0.97},
              "finalists": [
                  {"name": "fast", "latency_ms_p50": 1.0, "size_bytes": 10, "retention": 0.90},
                  {"name": "good", "latency_ms_p50": 3.0, "size_bytes": 10, "retention": 0.99},
                  {"name": "near", "latency_ms_p50": 2.2, "size_bytes": 10, "retention": 0.96}],
              "screen": {}}
    found = closest(result, count=2)  # shortfalls relative to each limit: 7% and 11%
    assert [name for name, _ in found] == ["fast", "near"]
    assert found[0][1] == ["retention 90.00% under 97.00%"]
    assert found[1][1] == ["latency 2.200 ms, 1.10× the 2.000 ms budget",
                           "retention 96.00% under 97.00%"]
    screened = closest({"budget": {"max_latency_ms": 1.0}, "finalists": [],
                        "screen": {"a": {"latency_ms_p50": 4.0, "size_bytes": 1},
                                   "b": {"latency_ms_p50": 1.5, "size_bytes": 1}}})
    assert screened[0] == ("b", ["latency 1.500 ms, 1.50× the 1.000 ms budget"])


def test_text_recipes_the_planner_cannot_cut_are_refused_first():
    from distill.plan import plan

    recipe = _recipe("teacher")
    recipe["student"] = {"arch": "hf-scratch", "config": {"hidden_size": 8}}
    with pytest.raises(ValueError, match="arch = 'hf-layers'; it also plans 'mlp' and 'cnn'"):
        plan(parse_recipe(recipe), min_speedup=2)


def test_a_teacher_family_the_planner_cannot_cut_is_named_before_any_work(tmp_path):
    from distill.plan import plan

    from .conftest import transformers

    config = transformers.GPT2Config(n_layer=2, n_embd=16, n_head=2, vocab_size=32,
                                     num_labels=2)
    transformers.GPT2ForSequenceClassification(config).save_pretrained(tmp_path / "gpt2")
    recipe = _recipe(str(tmp_path / "gpt2"))  # its data file does not even exist
    with pytest.raises(ValueError, match="cuts the blocks of bert, .*this teacher is model_type "
                                         "'gpt2'"):
        plan(parse_recipe(recipe), min_speedup=2)
