"""Users' text through `distill run`: a CSV, a Parquet file and a saved `datasets` dataset of
real Rotten Tomatoes review snippets, a tiny BERT teacher fine-tuned on them first, its every
other block as the student; `distill eval --recipe` gives the run's own numbers back.

A randomly initialised BERT of 16 dimensions fine-tuned for seconds on 160 real snippets learns
little about sentiment, so these tests check the pipeline (files read, labels named, metrics,
reports, identical re-evaluation); that a fine-tuned teacher learns is checked on text whose
label follows its words (tests/hf/test_recipes.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distill.cli import main

pd = pytest.importorskip("pandas")


def _table(tmp_path: Path, kind: str, texts: list[str], labels: list[int]) -> str:
    frame = pd.DataFrame({"review": texts,
                          "sentiment": ["positive" if y else "negative" for y in labels]})
    if kind == "csv":
        frame.to_csv(tmp_path / "reviews.csv", index=False)
        return 'format = "table"\npath = "reviews.csv"'
    if kind == "parquet":
        frame.to_parquet(tmp_path / "reviews.parquet")
        return 'format = "table"\npath = "reviews.parquet"'
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_pandas(frame).save_to_disk(str(tmp_path / "reviews-ds"))
    return 'format = "hf-dataset"\npath = "reviews-ds"'


@pytest.mark.parametrize("kind", ["csv", "parquet", "datasets"])
def test_review_snippets_run_end_to_end(tmp_path, make_word_tokenizer, make_bert, snippets,
                                        monkeypatch, capsys, kind):
    monkeypatch.setenv("DISTILL_CACHE", str(tmp_path / "cache"))
    texts, labels = snippets[0][:160], snippets[1][:160]
    tokenizer = make_word_tokenizer(texts)
    make_bert(layers=2, hidden=16, vocab_size=len(tokenizer)).save_pretrained(tmp_path / "teacher")
    tokenizer.save_pretrained(tmp_path / "teacher")
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(f"""
[data]
{_table(tmp_path, kind, texts, labels)}
test_fraction = 0.25
label_column = "sentiment"
text_column = "review"
max_length = 24
[teacher]
arch = "hf"
model = "teacher"
[teacher.finetune]
epochs = 6
batch_size = 16
lr = 0.01
[student]
arch = "hf-layers"
[train]
epochs = 3
batch_size = 16
lr = 0.01
[evaluate]
latency_repeats = 2
batch_sizes = [1]
""")
    out = tmp_path / "run"
    assert main(["run", str(recipe), "--check"]) == 0
    assert main(["run", str(recipe), "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"teacher", "student", "retention", "speedup", "compression"} <= set(metrics)
    assert metrics["data"]["class_names"] == ["negative", "positive"]
    assert metrics["student"]["test_samples"] == 40  # a quarter of 160 snippets held out
    assert len(metrics["student"]["accuracy_ci95"]) == 2
    assert (out / "report.md").is_file() and (out / "report.html").is_file()
    capsys.readouterr()
    assert main(["eval", str(out / "student"), "--recipe", str(recipe), "--json",
                 "--repeats", "2"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["student"]["accuracy"] == metrics["student"]["accuracy"]
