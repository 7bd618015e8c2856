"""A user's own nn.Module factory: never imported without trust_code, built and saved with it,
and every kind of bad factory string answered with one clear message."""

from __future__ import annotations

import sys

import pytest
import torch

import distill
from distill.artifacts import ArtifactError, UntrustedCodeError
from distill.students import build_user_model
from distill.students.user import FactoryError

MODULE = '''
import pathlib
import torch
from torch import nn

pathlib.Path({marker!r}).write_text("imported")
NOT_CALLABLE = 3


class Tiny(nn.Module):
    def __init__(self, width, classes):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(16, width), nn.ReLU(),
                                  nn.Linear(width, classes))

    def forward(self, x):
        return self.body(x)


def make(width=4, classes=3, note=None):
    return Tiny(width, classes)


def not_a_model():
    return "a string"
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A module ``my_models_<id>`` in tmp_path, on sys.path; importing it writes a marker."""
    name = f"my_models_{tmp_path.name.replace('-', '_')}"
    marker = tmp_path / "imported.txt"
    (tmp_path / f"{name}.py").write_text(MODULE.format(marker=str(marker)))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name, marker
    sys.modules.pop(name, None)


def test_an_untrusted_factory_is_refused_before_anything_is_imported(user_module):
    name, marker = user_module
    with pytest.raises(UntrustedCodeError, match="trust_code=True") as info:
        build_user_model(f"{name}:make", width=4)
    assert f"{name}:make" in str(info.value)
    assert not marker.exists() and name not in sys.modules


def test_a_trusted_factory_builds_saves_and_reloads_with_trust_code(user_module, tmp_path):
    name, marker = user_module
    torch.manual_seed(0)
    model = build_user_model(f"{name}:make", trust_code=True, width=5, classes=2)
    assert marker.exists() and type(model).__name__ == "Tiny"
    assert model.body[1].out_features == 5
    folder = distill.save(model, tmp_path / "saved")
    x = torch.randn(3, 1, 4, 4)
    sys.modules.pop(name)  # a later process: nothing imported yet
    marker.unlink()
    with pytest.raises(UntrustedCodeError):
        distill.load(folder)
    assert not marker.exists()
    reloaded = distill.load(folder, trust_code=True)
    assert type(reloaded).__name__ == "Tiny" and reloaded.body[1].out_features == 5
    assert torch.equal(reloaded(x), model.eval()(x))
    assert reloaded.distill_spec == {"architecture": f"{name}:make",
                                     "kwargs": {"width": 5, "classes": 2}}


def test_a_class_is_a_factory_too(user_module):
    name, _ = user_module
    model = build_user_model(f"{name}:Tiny", trust_code=True, width=2, classes=2)
    assert model(torch.randn(1, 1, 4, 4)).shape == (1, 2)


@pytest.mark.parametrize("factory,message", [
    ("no_such_package_xyz.models:make", r"no module named 'no_such_package_xyz.models'"),
    ("{name}:mkae", r"has no attribute 'mkae'; did you mean 'make'\?"),
    ("{name}:NOT_CALLABLE", r"names a int, which is not callable"),
    ("{name}:not_a_model", r"returned a str, not a model"),
    ("{name}", r"is not a 'package.module:function' string"),
    ("{name}:make", r"cannot be called with \['depth'\] keyword arguments"),
])
def test_each_bad_factory_gives_its_own_clear_message(user_module, factory, message):
    name, _ = user_module
    kwargs = {"depth": 3} if factory.endswith(":make") else {}
    with pytest.raises(FactoryError, match=message):
        build_user_model(factory.format(name=name), trust_code=True, **kwargs)


def test_a_module_whose_own_import_is_missing_says_which(tmp_path, monkeypatch):
    (tmp_path / "needs_missing_dep.py").write_text("import not_installed_dep_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(FactoryError, match="imports 'not_installed_dep_xyz', which is not "
                                               "installed"):
            build_user_model("needs_missing_dep:make", trust_code=True)
    finally:
        sys.modules.pop("needs_missing_dep", None)


def test_kwargs_that_are_not_json_values_are_refused_when_saving(user_module, tmp_path):
    name, _ = user_module
    model = build_user_model(f"{name}:make", trust_code=True, width=3, note={"a", "set"})
    with pytest.raises(ArtifactError, match=r"'.*:make'.*must be JSON values"):
        distill.save(model, tmp_path / "set-kwarg")
    assert not (tmp_path / "set-kwarg").exists()
