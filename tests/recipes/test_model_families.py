"""Recipes with transformers' vision families and a user's own module, on an image folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from distill.cli import main
from distill.recipes import RecipeError, load_recipe

MODULE = '''
import torch.nn as nn

def small_net(input_shape, num_classes, width=8):
    c, h, w = input_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, width), nn.ReLU(),
                         nn.Linear(width, num_classes))
'''


def _images(root: Path, per_class: int, seed: int) -> None:
    """Two classes told apart by brightness: a bright and a dark square on noise."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for label, name in enumerate(("dark", "bright")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 100, (16, 16, 3)) + 120 * label
            Image.fromarray(pixels.astype(np.uint8), "RGB").save(root / name / f"{i}.png")


def _recipe(tmp_path: Path, teacher: str, student: str) -> Path:
    _images(tmp_path / "train", 24, 0)
    _images(tmp_path / "test", 8, 1)
    path = tmp_path / "recipe.toml"
    path.write_text(f"""
[data]
format = "image-folder"
path = "train"
test = "test"
[teacher]
{teacher}
[teacher.train]
epochs = 4
batch_size = 8
[student]
{student}
[train]
epochs = 2
batch_size = 8
[evaluate]
latency_repeats = 2
batch_sizes = [1]
""")
    return path


def test_a_resnet_teacher_distils_into_a_mobilenet_student(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DISTILL_CACHE", str(tmp_path / "cache"))
    recipe = _recipe(tmp_path, 'arch = "hf-vision"\nfamily = "resnet"\nsize = "tiny"',
                     'arch = "hf-vision"\nfamily = "mobilenetv2"\nsize = "tiny"')
    out = tmp_path / "run"
    assert main(["run", str(recipe), "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["teacher"]["accuracy"] > 0.9  # the classes differ by brightness alone
    config = json.loads((out / "student" / "config.json").read_text())
    assert config["model_type"] == "mobilenet_v2"  # a transformers folder, loadable anywhere
    capsys.readouterr()
    assert main(["eval", str(out / "student"), "--recipe", str(recipe), "--json",
                 "--repeats", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["student"]["accuracy"] == pytest.approx(
        metrics["student"]["accuracy"])


def test_a_users_module_is_built_only_when_trusted(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILL_CACHE", str(tmp_path / "cache"))
    (tmp_path / "my_nets.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    student = 'arch = "module"\nfactory = "my_nets:small_net"\nkwargs = {width = 4}'
    untrusted = _recipe(tmp_path / "a", 'arch = "mlp"\nhidden = [16]', student)
    with pytest.raises(RecipeError, match="trust_code = true"):
        load_recipe(untrusted)
    assert "my_nets" not in sys.modules
    recipe = _recipe(tmp_path / "b", 'arch = "mlp"\nhidden = [16]',
                     student + "\ntrust_code = true")
    out = tmp_path / "run"
    assert main(["run", str(recipe), "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["student"]["params"] == 16 * 16 * 3 * 4 + 4 + 4 * 2 + 2


def test_an_unknown_family_gets_a_did_you_mean(tmp_path):
    recipe = _recipe(tmp_path, 'arch = "mlp"', 'arch = "hf-vision"\nfamily = "resnt"')
    with pytest.raises(RecipeError, match="did you mean 'resnet'"):
        load_recipe(recipe)


def test_check_names_a_factory_that_does_not_import_and_a_missing_checkpoint(tmp_path, capsys):
    recipe = _recipe(tmp_path, 'arch = "hf-vision"\nfamily = "resnet"\nsize = "tiny"\n'
                     'weights = "resnet.safetensors"',
                     'arch = "module"\nfactory = "no_such_pkg.nets:small"\ntrust_code = true')
    assert main(["run", str(recipe), "--check"]) == 1
    err = capsys.readouterr().err
    assert "[teacher] weights" in err and "resnet.safetensors" in err and "no such file" in err
    assert "[student] factory" in err and "no module named 'no_such_pkg.nets'" in err


def test_a_pretrained_vision_folder_is_fine_tuned_as_the_teacher(tmp_path, monkeypatch):
    from distill.students import build_vision_model

    monkeypatch.setenv("DISTILL_CACHE", str(tmp_path / "cache"))
    build_vision_model("resnet", 5, image_size=16, channels=3).save_pretrained(tmp_path / "rn")
    recipe = _recipe(tmp_path, 'arch = "hf-vision"\nmodel = "rn"',
                     'arch = "hf-vision"\nfamily = "resnet"\nsize = "tiny"\n'
                     'config = {hidden_sizes = [4, 8]}')
    out = tmp_path / "run"
    assert main(["run", str(recipe), "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["teacher"]["accuracy"] > 0.9  # its 5-class head remade for the 2 classes
    with pytest.raises(RecipeError, match="family = .* or model = .*one of them"):
        load_recipe(_recipe(tmp_path / "c", 'arch = "hf-vision"\nmodel = "rn"\nfamily = "vit"',
                            'arch = "mlp"'))
