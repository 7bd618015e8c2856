"""`distill init`'s starter recipes run as written, with their choices explained."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from distill.recipes import load_recipe
from distill.recipes.check import check_recipe
from distill.recipes.runner import run_recipe
from distill.recipes.starter import starter_recipe


def _images(root: Path, per_class: int, seed: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    for label, name in enumerate(("dark", "bright")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 100, (12, 12)) + 120 * label
            Image.fromarray(pixels.astype(np.uint8), "L").save(root / name / f"{i}.png")


def _write_and_run(tmp_path: Path, starter, monkeypatch) -> dict:
    monkeypatch.setenv("DISTILL_CACHE", str(tmp_path / "cache"))
    recipe_path = tmp_path / "recipes" / "starter.toml"
    recipe_path.parent.mkdir(exist_ok=True)
    recipe_path.write_text(starter.text)
    recipe = load_recipe(recipe_path)
    check_recipe(recipe)
    run_recipe(recipe, tmp_path / "run", recipe_text=starter.text, progress=False)
    return json.loads((tmp_path / "run" / "metrics.json").read_text())


def test_an_image_folder_with_a_test_sibling(tmp_path, monkeypatch):
    _images(tmp_path / "train", 20, 0)
    _images(tmp_path / "test", 6, 1)
    starter = starter_recipe(tmp_path / "train", out=tmp_path / "recipes" / "starter.toml")
    assert 'test = "../test"' in starter.text and "# image-folder: image inputs" in starter.text
    assert starter.text.count("#") >= 8  # the choices are explained
    metrics = _write_and_run(tmp_path, starter, monkeypatch)
    assert metrics["teacher"]["accuracy"] > 0.9 and metrics["baseline"]


def test_a_tabular_csv_guesses_its_label_column(tmp_path, monkeypatch):
    from sklearn.datasets import load_wine

    wine = load_wine(as_frame=True).frame
    wine.to_csv(tmp_path / "wine.csv", index=False)
    starter = starter_recipe(tmp_path / "wine.csv", out=tmp_path / "recipes" / "starter.toml")
    assert 'label_column = "target"' in starter.text and "test_fraction = 0.2" in starter.text
    metrics = _write_and_run(tmp_path, starter, monkeypatch)
    assert metrics["teacher"]["accuracy"] > 0.8


def test_a_vision_family_teacher_gets_a_vision_student(tmp_path):
    _images(tmp_path / "imgs", 4, 0)
    starter = starter_recipe(tmp_path / "imgs", teacher="resnet",
                             out=tmp_path / "starter.toml")
    assert 'family = "resnet"' in starter.text and 'family = "mobilenet_v2"' in starter.text
    assert "test_fraction" in starter.text


def test_text_without_a_teacher_and_unlabelled_tables_say_what_to_give(tmp_path):
    for name in ("a", "b"):
        (tmp_path / "docs" / name).mkdir(parents=True)
        for i in range(5):
            (tmp_path / "docs" / name / f"{i}.txt").write_text(f"{name} text {i}")
    with pytest.raises(ValueError, match="pass --teacher"):
        starter_recipe(tmp_path / "docs", out=tmp_path / "r.toml")
    (tmp_path / "t.csv").write_text("x,z\n1,2\n")
    with pytest.raises(ValueError, match="no column looks like the label.*x, z"):
        starter_recipe(tmp_path / "t.csv", out=tmp_path / "r.toml")


def test_distill_init_writes_a_recipe_that_check_accepts(tmp_path, capsys):
    from distill.cli import main

    _images(tmp_path / "train", 6, 0)
    out = tmp_path / "recipes" / "mine.toml"
    assert main(["init", str(tmp_path / "train"), "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out and out.is_file()
    assert main(["run", str(out), "--check"]) == 0
    assert main(["init", str(tmp_path / "train"), "--out", str(out)]) == 1  # no overwrite
    assert "--force" in capsys.readouterr().err
