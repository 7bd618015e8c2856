"""The README's whole recipes run as written through `distill run`.

Each recipe names files "beside the recipe" (an image folder, a CSV of texts, a fine-tuned
BERT folder, a text corpus, a causal-LM folder); the test writes them from real data that ships
offline (Fashion-MNIST images, Rotten Tomatoes review snippets) and, for the models, from tiny
randomly initialised networks of the named kind saved under the named folder: the README's
models are the reader's and cannot be downloaded here. The recipe text itself is not touched.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from distill.cli import main

transformers = pytest.importorskip("transformers")
pd = pytest.importorskip("pandas")

README = Path(__file__).resolve().parents[2] / "README.md"
RECIPES = [block for block in re.findall(r"```toml\n(.*?)```", README.read_text(), flags=re.S)
           if "[data]" in block]


def _recipe_with(key: str) -> str:
    found = [recipe for recipe in RECIPES if key in recipe]
    assert len(found) == 1, f"expected one README recipe with {key!r}, found {len(found)}"
    return found[0]


def _run(tmp_path: Path, text: str, capsys, monkeypatch) -> dict:
    monkeypatch.setenv("DISTILL_CACHE", str(tmp_path / "cache"))
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(text)
    assert main(["run", str(recipe), "--check"]) == 0, capsys.readouterr().err
    out = tmp_path / "run"
    assert main(["run", str(recipe), "--out", str(out), "--quiet"]) == 0, capsys.readouterr().err
    for name in ("metrics.json", "report.md", "report.html", "student/config.json"):
        assert (out / name).is_file(), name
    return json.loads((out / "metrics.json").read_text())


def test_the_image_folder_recipe_runs_as_written(tmp_path, capsys, monkeypatch):
    from PIL import Image

    from distill.data import load_dataset
    from distill.data.fashion_mnist import MEAN, STD

    for split, per_class in (("train", 8), ("test", 4)):
        data = load_dataset("fashion-mnist", split)
        pixels = ((data.inputs[:, 0] * STD + MEAN) * 255).round().clamp(0, 255).byte().numpy()
        for label, name in ((1, "trouser"), (7, "sneaker")):
            folder = tmp_path / "images" / split / name
            folder.mkdir(parents=True)
            for i, index in enumerate(np.flatnonzero(data.labels.numpy() == label)[:per_class]):
                Image.fromarray(pixels[index], "L").save(folder / f"{i:02d}.png")
    metrics = _run(tmp_path, _recipe_with('format = "image-folder"'), capsys, monkeypatch)
    assert metrics["data"]["class_names"] == ["sneaker", "trouser"]
    assert metrics["student"]["params"] < metrics["teacher"]["params"]
    assert "baseline" in metrics


def test_the_text_csv_recipe_runs_as_written(tmp_path, capsys, monkeypatch, snippets,
                                             make_word_tokenizer, make_bert):
    texts, labels = snippets[0][:120], snippets[1][:120]
    pd.DataFrame({"text": texts, "label": labels}).to_csv(tmp_path / "reviews.csv", index=False)
    tokenizer = make_word_tokenizer(texts)
    teacher = make_bert(layers=4, vocab_size=len(tokenizer), max_position_embeddings=64)
    teacher.save_pretrained(tmp_path / "my-finetuned-bert")
    tokenizer.save_pretrained(tmp_path / "my-finetuned-bert")
    metrics = _run(tmp_path, _recipe_with('format = "table"'), capsys, monkeypatch)
    assert metrics["data"]["class_names"] == ["0", "1"]  # rotten, fresh
    assert metrics["student"]["params"] < metrics["teacher"]["params"]  # every other block


def test_the_causal_lm_recipe_runs_as_written(tmp_path, capsys, monkeypatch, snippets,
                                              make_word_tokenizer):
    texts = snippets[0][:360]  # 5% held out is 18 snippets, over one block of 256 tokens
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(6):  # each snippet a document (the files split at blank lines)
        (corpus / f"reviews-{i}.txt").write_text("\n\n".join(texts[60 * i:60 * (i + 1)]))
    tokenizer = make_word_tokenizer(texts, causal=True)
    torch.manual_seed(0)
    # One attention head (the CPU's attention kernel costs per head and query, and the report
    # times every model dozens of times on blocks of 256) and 280 positions: the blocks fit,
    # so does the 64-token speed prompt with its 32 new tokens; the 256-token one is left out
    # as for any model without the positions (distill.lm.compare), at half the speed report's
    # cost.
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=28, num_attention_heads=1,
        num_key_value_heads=1, intermediate_size=32, max_position_embeddings=280)
    transformers.LlamaForCausalLM(config).save_pretrained(tmp_path / "smollm2-135m")
    tokenizer.save_pretrained(tmp_path / "smollm2-135m")
    metrics = _run(tmp_path, _recipe_with('task = "causal-lm"'), capsys, monkeypatch)
    assert {"teacher", "student", "baseline"} <= set(metrics)
    assert metrics["student"]["params"] < metrics["teacher"]["params"]  # ten of its 28 blocks
    assert set(metrics["generation_speed"]["student"]) == {"p64_t1"}  # the prompt that fits
