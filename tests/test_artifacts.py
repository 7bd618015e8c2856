"""distill.save / distill.load: safetensors + JSON folders, atomic, and no pickle."""

from __future__ import annotations

import importlib
import json
import sys

import pytest
import safetensors.torch
import torch
import torch.nn.functional as F
from torch import nn

import distill
from distill import build_cnn, build_mlp
from distill.artifacts import (
    CONFIG,
    FORMAT,
    WEIGHTS,
    ArtifactError,
    UntrustedCodeError,
    read_config,
)


def _train_one_step(model, x, seed=0):
    """One optimizer step in train mode: weights and BatchNorm running stats leave defaults."""
    torch.manual_seed(seed)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    F.cross_entropy(model(x), torch.randint(0, 10, (len(x),))).backward()
    optimizer.step()
    return model.eval()


def _images(n=6, shape=(1, 8, 8), seed=0):
    return torch.randn(n, *shape, generator=torch.Generator().manual_seed(seed))


MODELS = {
    "mlp": lambda: build_mlp((1, 8, 8), 10, hidden=(16, 8), dropout=0.1),
    "cnn": lambda: build_cnn((1, 8, 8), 10, channels=(4, 8), convs_per_stage=2),
    "cnn-flatten": lambda: build_cnn(
        (1, 8, 8), 10, channels=(4,), head="flatten", hidden=12, dropout=0.2
    ),
}


@pytest.fixture
def trained_cnn():
    return _train_one_step(build_cnn((1, 8, 8), 10, channels=(4, 8)), _images(16))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_round_trip_gives_identical_outputs(tmp_path, name):
    model = _train_one_step(MODELS[name](), _images(16))
    x = _images(5, seed=1)
    expected = model(x)
    returned = distill.save(model, tmp_path / "model")
    assert returned == tmp_path / "model"
    loaded = distill.load(tmp_path / "model")
    assert not loaded.training
    assert torch.equal(loaded(x), expected)
    state, loaded_state = model.state_dict(), loaded.state_dict()
    assert state.keys() == loaded_state.keys()
    for key in state:
        assert torch.equal(state[key], loaded_state[key]), key
    assert loaded.distill_spec == model.distill_spec


def test_batchnorm_running_stats_survive(tmp_path, trained_cnn):
    bn = trained_cnn[1]
    assert isinstance(bn, nn.BatchNorm2d)
    assert not torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))
    assert int(bn.num_batches_tracked) == 1
    distill.save(trained_cnn, tmp_path / "cnn")
    loaded_bn = distill.load(tmp_path / "cnn")[1]
    assert torch.equal(loaded_bn.running_mean, bn.running_mean)
    assert torch.equal(loaded_bn.running_var, bn.running_var)
    assert int(loaded_bn.num_batches_tracked) == 1


def test_folder_holds_exactly_config_and_safetensors(tmp_path, trained_cnn):
    folder = distill.save(trained_cnn, tmp_path / "cnn", metadata={"teacher": "resnet", "T": 4})
    assert sorted(p.name for p in folder.iterdir()) == sorted([CONFIG, WEIGHTS])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cnn"]  # no temp folders left over

    weights = (folder / WEIGHTS).read_bytes()
    assert weights[:1] != b"\x80"  # pickle protocol 2+ opcode
    assert weights[:4] != b"PK\x03\x04"  # torch.save's zip container
    header_len = int.from_bytes(weights[:8], "little")  # safetensors: u64 length + JSON header
    header = json.loads(weights[8 : 8 + header_len])
    assert set(header) - {"__metadata__"} == set(trained_cnn.state_dict())
    tensors = safetensors.torch.load_file(str(folder / WEIGHTS))
    assert torch.equal(tensors["0.weight"], trained_cnn[0].weight)

    config = json.loads((folder / CONFIG).read_text())
    assert config["format"] == FORMAT
    assert config["architecture"] == "cnn"
    assert config["kwargs"] == trained_cnn.distill_spec["kwargs"]
    assert config["params"] == sum(p.numel() for p in trained_cnn.parameters())
    assert config["metadata"] == {"teacher": "resnet", "T": 4}
    assert read_config(folder) == config


def test_saving_again_replaces_the_folder(tmp_path):
    first = _train_one_step(build_mlp((4,), 10, hidden=(3,)), torch.randn(8, 4), seed=0)
    second = _train_one_step(build_mlp((4,), 10, hidden=(5,)), torch.randn(8, 4), seed=1)
    distill.save(first, tmp_path / "m")
    (tmp_path / "m" / "stray.txt").write_text("left from before")
    distill.save(second, tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == sorted([CONFIG, WEIGHTS])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    x = torch.randn(3, 4)
    assert torch.equal(distill.load(tmp_path / "m")(x), second(x))


# ---------------------------------------------------------------- broken folders


def test_load_missing_folder(tmp_path):
    with pytest.raises(ArtifactError) as info:
        distill.load(tmp_path / "nothing-here")
    assert str(tmp_path / "nothing-here") in str(info.value)


def test_load_without_config(tmp_path, trained_cnn):
    folder = distill.save(trained_cnn, tmp_path / "m")
    (folder / CONFIG).unlink()
    with pytest.raises(ArtifactError) as info:
        distill.load(folder)
    assert str(folder) in str(info.value) and CONFIG in str(info.value)


def test_load_without_weights(tmp_path, trained_cnn):
    folder = distill.save(trained_cnn, tmp_path / "m")
    (folder / WEIGHTS).unlink()
    with pytest.raises(ArtifactError) as info:
        distill.load(folder)
    assert str(folder) in str(info.value) and WEIGHTS in str(info.value)


def test_load_with_corrupt_json(tmp_path, trained_cnn):
    folder = distill.save(trained_cnn, tmp_path / "m")
    (folder / CONFIG).write_text('{"format": "distill.model/1", "architecture": ')
    with pytest.raises(ArtifactError) as info:
        distill.load(folder)
    assert str(folder / CONFIG) in str(info.value) and "JSON" in str(info.value)


def test_load_with_wrong_format(tmp_path, trained_cnn):
    folder = distill.save(trained_cnn, tmp_path / "m")
    config = json.loads((folder / CONFIG).read_text())
    config["format"] = "something/9"
    (folder / CONFIG).write_text(json.dumps(config))
    with pytest.raises(ArtifactError, match="something/9"):
        distill.load(folder)


@pytest.mark.parametrize(
    "other",
    [
        lambda: build_cnn((1, 8, 8), 10, channels=(4, 16)),  # same keys, other shapes
        lambda: build_cnn((1, 8, 8), 10, channels=(4,)),  # fewer layers
        lambda: build_mlp((1, 8, 8), 10, hidden=(16,)),  # other family
    ],
    ids=["shapes", "keys", "family"],
)
def test_load_weights_of_another_architecture(tmp_path, trained_cnn, other):
    folder = distill.save(trained_cnn, tmp_path / "m")
    safetensors.torch.save_model(other(), str(folder / WEIGHTS))
    with pytest.raises(ArtifactError) as info:
        distill.load(folder)
    assert str(folder / WEIGHTS) in str(info.value)


def test_load_unknown_architecture(tmp_path, trained_cnn):
    folder = distill.save(trained_cnn, tmp_path / "m")
    config = json.loads((folder / CONFIG).read_text())
    for name, pattern in (
        ("transformer", "unknown architecture"),
        ("no_such_module_xyz:f", "cannot import"),
        ("torch.nn:NoSuchLayer", "cannot import"),
    ):
        config["architecture"] = name
        (folder / CONFIG).write_text(json.dumps(config))
        with pytest.raises(ArtifactError, match=pattern):
            distill.load(folder, trust_code=True)


def test_load_config_without_architecture_is_an_artifact_error(tmp_path, trained_cnn):
    folder = distill.save(trained_cnn, tmp_path / "m")
    (folder / CONFIG).write_text(json.dumps({"format": FORMAT, "kwargs": {}}))
    with pytest.raises(ArtifactError):
        distill.load(folder)


# ---------------------------------------------------------------- what can be saved


def test_plain_module_without_spec_is_refused(tmp_path):
    with pytest.raises(ArtifactError, match="architecture="):
        distill.save(nn.Sequential(nn.Linear(3, 2)), tmp_path / "m")
    assert not (tmp_path / "m").exists()
    assert list(tmp_path.iterdir()) == []


FACTORY_MODULE = """
from torch import nn


class Tiny(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.a = nn.Linear(3, width)
        self.b = nn.Linear(width, 2)

    def forward(self, x):
        return self.b(self.a(x).tanh())


def make_tiny(width=4):
    return Tiny(width)
"""


@pytest.fixture
def factory_module(tmp_path, monkeypatch):
    """An importable module of the user's own, holding a model factory."""
    folder = tmp_path / "user_code"
    folder.mkdir()
    (folder / "my_factories_for_test.py").write_text(FACTORY_MODULE)
    monkeypatch.syspath_prepend(str(folder))
    try:
        yield importlib.import_module("my_factories_for_test")
    finally:
        sys.modules.pop("my_factories_for_test", None)


def test_user_factory_by_import_path(tmp_path, factory_module):
    model = factory_module.make_tiny(width=5)
    folder = distill.save(
        model,
        tmp_path / "saved",
        architecture="my_factories_for_test:make_tiny",
        kwargs={"width": 5},
    )
    config = json.loads((folder / CONFIG).read_text())
    assert config["architecture"] == "my_factories_for_test:make_tiny"
    assert config["kwargs"] == {"width": 5}
    with pytest.raises(UntrustedCodeError, match="trust_code=True"):
        distill.load(folder)  # a path to code, read from a file: not imported unasked
    loaded = distill.load(folder, trust_code=True)
    assert isinstance(loaded, factory_module.Tiny) and loaded.a.out_features == 5
    x = torch.randn(4, 3)
    assert torch.equal(loaded(x), model(x))
    assert loaded.distill_spec == {
        "architecture": "my_factories_for_test:make_tiny",
        "kwargs": {"width": 5},
    }


def test_load_user_factory_config_without_kwargs(tmp_path, factory_module):
    model = factory_module.make_tiny()
    folder = distill.save(model, tmp_path / "saved", architecture="my_factories_for_test:make_tiny")
    config = json.loads((folder / CONFIG).read_text())
    del config["kwargs"]
    (folder / CONFIG).write_text(json.dumps(config))
    loaded = distill.load(folder, trust_code=True)
    x = torch.randn(2, 3)
    assert torch.equal(loaded(x), model(x))


def test_metadata_that_is_not_json_is_refused_before_writing(tmp_path, trained_cnn):
    with pytest.raises(ValueError):
        distill.save(trained_cnn, tmp_path / "m", metadata={"loss": float("nan")})
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- atomicity


def _failing_save_model(*args, **kwargs):
    raise OSError("disk full")


def test_failed_save_leaves_nothing(tmp_path, trained_cnn, monkeypatch):
    monkeypatch.setattr(safetensors.torch, "save_model", _failing_save_model)
    with pytest.raises(OSError, match="disk full"):
        distill.save(trained_cnn, tmp_path / "m")
    assert list(tmp_path.iterdir()) == []


def test_failed_save_keeps_the_previous_model(tmp_path, trained_cnn, monkeypatch):
    folder = distill.save(trained_cnn, tmp_path / "m")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    x = _images(3, seed=2)
    expected = trained_cnn(x)

    other = _train_one_step(build_cnn((1, 8, 8), 10, channels=(4, 8)), _images(16), seed=5)
    monkeypatch.setattr(safetensors.torch, "save_model", _failing_save_model)
    with pytest.raises(OSError, match="disk full"):
        distill.save(other, folder)
    monkeypatch.undo()

    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert torch.equal(distill.load(folder)(x), expected)


def test_failure_while_writing_config_leaves_nothing(tmp_path, trained_cnn, monkeypatch):
    from distill import atomic

    def failing_write_json(path, obj):
        raise OSError("no space for config")

    monkeypatch.setattr(atomic, "write_json", failing_write_json)
    with pytest.raises(OSError, match="no space"):
        distill.save(trained_cnn, tmp_path / "m")
    assert list(tmp_path.iterdir()) == []


def test_saved_files_are_readable_by_others(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        folder = distill.save(distill.build_mlp((4,), 2, hidden=(3,)), tmp_path / "m")
    finally:
        os.umask(old)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    for name in ("config.json", "model.safetensors"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o644


def test_pickles_load_only_when_allowed_and_then_with_a_warning(tmp_path):
    from distill.artifacts import PickleRefusedError

    model = distill.build_mlp((1, 8, 8), 10, hidden=(8,)).eval()
    torch.save(model, tmp_path / "model.pt")
    with pytest.raises(PickleRefusedError, match="allow_pickle=True"):
        distill.load(tmp_path / "model.pt")
    with pytest.warns(UserWarning, match="unpickling"):
        loaded = distill.load(tmp_path / "model.pt", allow_pickle=True)
    x = torch.randn(2, 1, 8, 8)
    torch.testing.assert_close(loaded(x), model(x))
    torch.save(model.state_dict(), tmp_path / "state.pt")
    with pytest.raises(distill.artifacts.ArtifactError, match="not a model"), \
            pytest.warns(UserWarning, match="unpickling"):
        distill.load(tmp_path / "state.pt", allow_pickle=True)


def test_a_hugging_face_folder_with_only_pickled_weights_is_refused(tmp_path):
    transformers = pytest.importorskip("transformers")
    from distill.artifacts import PickleRefusedError
    from distill.hf import load_model

    torch.manual_seed(0)
    bert = transformers.BertForSequenceClassification(transformers.BertConfig(
        vocab_size=32, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=16, num_labels=2)).eval()
    bert.config.architectures = ["BertForSequenceClassification"]
    bert.config.save_pretrained(tmp_path / "bin")  # the weights as an old-style .bin pickle
    torch.save(bert.state_dict(), tmp_path / "bin" / "pytorch_model.bin")
    for load in (distill.load, load_model):
        with pytest.raises(PickleRefusedError, match="pytorch_model.bin is a pickle"):
            load(tmp_path / "bin")
    with pytest.warns(UserWarning, match="pickled weights"):
        loaded = distill.load(tmp_path / "bin", allow_pickle=True)
    ids = torch.randint(4, 30, (1, 5))
    torch.testing.assert_close(loaded(input_ids=ids).logits, bert(input_ids=ids).logits)
