"""`distill run` on users' own files: an image folder and a tabular CSV, written by the test.

Each run leaves student/, metrics.json and both reports, and `distill eval --recipe` of the
saved student on the same files gives the numbers the run reported.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from distill.cli import main
from distill.data import load_dataset
from distill.data.fashion_mnist import MEAN, STD

CLASSES = {0: "t-shirt", 1: "trouser", 7: "sneaker"}


def _write_fashion_folder(root: Path, split: str, per_class: int) -> None:
    from PIL import Image

    data = load_dataset("fashion-mnist", split)
    pixels = ((data.inputs[:, 0] * STD + MEAN) * 255).round().clamp(0, 255).byte().numpy()
    labels = data.labels.numpy()
    for label, name in CLASSES.items():
        (root / name).mkdir(parents=True)
        for i, index in enumerate(np.flatnonzero(labels == label)[:per_class]):
            Image.fromarray(pixels[index], "L").save(root / name / f"{i:03d}.png")


def _recipe(tmp_path: Path, data: str, teacher: str, student: str) -> Path:
    path = tmp_path / "recipe.toml"
    path.write_text(f"""
name = "mine"
{data}
{teacher}
[teacher.train]
epochs = 10
batch_size = 16
[student]
{student}
[train]
epochs = 3
batch_size = 32
[baseline]
enabled = true
[evaluate]
latency_repeats = 3
batch_sizes = [1]
""")
    return path


def _run_and_eval(tmp_path: Path, recipe: Path, capsys) -> dict:
    out = tmp_path / "run"
    assert main(["run", str(recipe), "--check"]) == 0
    assert "valid; data:" in capsys.readouterr().out
    assert main(["run", str(recipe), "--out", str(out), "--quiet"]) == 0
    for name in ("metrics.json", "report.md", "report.html", "student/config.json"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"teacher", "student", "baseline", "retention", "speedup", "compression"} <= set(metrics)
    capsys.readouterr()
    assert main(["eval", str(out / "student"), "--recipe", str(recipe), "--json",
                 "--repeats", "2"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["student"]["accuracy"] == metrics["student"]["accuracy"]
    return metrics


def test_an_image_folder_of_fashion_mnist_runs_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DISTILL_CACHE", str(tmp_path / "cache"))
    _write_fashion_folder(tmp_path / "train", "train", 60)
    _write_fashion_folder(tmp_path / "test", "test", 30)
    recipe = _recipe(
        tmp_path, '[data]\nformat = "image-folder"\npath = "train"\ntest = "test"',
        '[teacher]\narch = "cnn"\nchannels = [8, 16]\nhead = "flatten"\nhidden = 32',
        'arch = "mlp"\nhidden = [8]')
    metrics = _run_and_eval(tmp_path, recipe, capsys)
    assert metrics["teacher"]["accuracy"] > 0.8  # three classes that are easy to tell apart
    assert metrics["student"]["params"] < metrics["teacher"]["params"]


@pytest.mark.parametrize("stream", [False, True])  # in memory, or memory-mapped from the cache
def test_a_tabular_csv_runs_end_to_end(tmp_path, monkeypatch, capsys, stream):
    from sklearn.datasets import load_wine

    monkeypatch.setenv("DISTILL_CACHE", str(tmp_path / "cache"))
    wine = load_wine(as_frame=True).frame
    wine["target"] = wine["target"].map({0: "barolo", 1: "grignolino", 2: "barbera"})
    wine.to_csv(tmp_path / "wine.csv", index=False)
    recipe = _recipe(
        tmp_path, '[data]\nformat = "table"\npath = "wine.csv"\ntest_fraction = 0.3\n'
        f'label_column = "target"\nfeature_columns = "all-numeric"\nstream = {str(stream).lower()}',
        '[teacher]\narch = "mlp"\nhidden = [64, 64]', 'arch = "mlp"\nhidden = [4]')
    metrics = _run_and_eval(tmp_path, recipe, capsys)
    assert metrics["teacher"]["accuracy"] > 0.8


def test_check_names_a_missing_folder_before_anything_runs(tmp_path, capsys):
    recipe = _recipe(tmp_path, '[data]\nformat = "image-folder"\npath = "nowhere"\n'
                     'test_fraction = 0.2', '[teacher]\narch = "mlp"', 'arch = "mlp"')
    assert main(["run", str(recipe), "--check"]) == 1
    error = capsys.readouterr().err
    assert "nowhere" in error and "Traceback" not in error


@pytest.mark.parametrize("student_classes", [5])
def test_check_refuses_a_saved_student_with_other_classes(tmp_path, capsys, student_classes):
    import distill

    _write_fashion_folder(tmp_path / "train", "train", 5)
    distill.save(distill.build_mlp((1, 28, 28), student_classes, hidden=(4,)), tmp_path / "s")
    recipe = _recipe(tmp_path, '[data]\nformat = "image-folder"\npath = "train"\n'
                     'test_fraction = 0.4', '[teacher]\narch = "mlp"', 'path = "s"')
    assert main(["run", str(recipe), "--check"]) == 1
    assert "predicts 5 classes; the data has 3" in capsys.readouterr().err


def test_a_teacher_trained_on_other_pixels_is_refused_before_anything_trains(tmp_path, capsys):
    import distill

    _write_fashion_folder(tmp_path / "train", "train", 5)
    record = {"kind": "image", "size": [28, 28], "channels": "L", "mean": [0.0], "std": [1.0]}
    distill.save(distill.build_mlp((1, 28, 28), 3, hidden=(4,)), tmp_path / "t",
                 metadata={"preprocessing": record})
    recipe = _recipe(tmp_path, '[data]\nformat = "image-folder"\npath = "train"\n'
                     'test_fraction = 0.4', '[teacher]\npath = "t"', 'arch = "mlp"')
    recipe.write_text(recipe.read_text().replace("[teacher.train]\nepochs = 10\nbatch_size = 16\n",
                                                 ""))
    out = tmp_path / "run"
    assert main(["run", str(recipe), "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "mean [0], std [1]" in err and "mean [0.5]" in err and "Traceback" not in err
    assert not (out / "metrics.json").exists()
    fixed = recipe.read_text().replace('test_fraction = 0.4', 'test_fraction = 0.4\n'
                                       'mean = [0.0]\nstd = [1.0]')
    recipe.write_text(fixed)
    assert main(["run", str(recipe), "--out", str(out), "--quiet", "--force"]) == 0


def test_a_teacher_without_a_record_may_state_its_preprocessing(tmp_path, capsys):
    import distill

    _write_fashion_folder(tmp_path / "train", "train", 5)
    distill.save(distill.build_mlp((1, 28, 28), 3, hidden=(4,)), tmp_path / "t")
    recipe = _recipe(tmp_path, '[data]\nformat = "image-folder"\npath = "train"\n'
                     'test_fraction = 0.4',
                     '[teacher]\npath = "t"\npreprocessing = {kind = "image", size = [28, 28], '
                     'channels = "L", mean = [0.2], std = [0.3]}', 'arch = "mlp"')
    recipe.write_text(recipe.read_text().replace("[teacher.train]\nepochs = 10\nbatch_size = 16\n",
                                                 ""))
    assert main(["run", str(recipe), "--out", str(tmp_path / "run"), "--quiet"]) == 1
    assert "mean [0.2]" in capsys.readouterr().err
