"""A model folder from a stranger is data: loading it never runs code it names and never
allocates more memory than its weights file holds (unless the caller opts in)."""

from __future__ import annotations

import json
import time

import pytest
import safetensors.torch
import torch

import distill
from distill.artifacts import CONFIG, FORMAT, WEIGHTS, ArtifactError, UntrustedCodeError
from distill.cli import main
from distill.students import ARCHITECTURES, build_cnn, build_mlp, register_architecture


def _folder(tmp_path, architecture: str, kwargs: dict, tensors: dict | None = None,
            **extra) -> object:
    folder = tmp_path / "model"
    folder.mkdir()
    config = {"format": FORMAT, "architecture": architecture, "kwargs": kwargs, **extra}
    (folder / CONFIG).write_text(json.dumps(config))
    safetensors.torch.save_file(tensors or {"w": torch.zeros(1)}, str(folder / WEIGHTS))
    return folder


PAYLOADS = [
    ("os:system", lambda marker: {"command": f"touch {marker}"}),
    ("subprocess:getoutput", lambda marker: {"cmd": f"touch {marker}"}),
    ("subprocess:Popen", lambda marker: {"args": ["touch", str(marker)]}),
    ("runpy:run_path", lambda marker: {"path_name": str(marker.with_suffix(".py"))}),
    ("shutil:rmtree", lambda marker: {"path": str(marker.parent / "victim")}),
]


@pytest.mark.parametrize("factory,kwargs", PAYLOADS, ids=[p[0] for p in PAYLOADS])
def test_a_folder_naming_a_callable_runs_nothing(tmp_path, factory, kwargs):
    marker = tmp_path / "ran"
    marker.with_suffix(".py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (tmp_path / "victim").mkdir()
    folder = _folder(tmp_path, factory, kwargs(marker))
    with pytest.raises(UntrustedCodeError, match="trust_code=True") as info:
        distill.load(folder)
    assert factory in str(info.value) and str(folder / CONFIG) in str(info.value)
    # the command line, and a recipe's saved teacher, refuse it the same way
    assert main(["eval", str(folder), "--data", "digits"]) == 1
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(f'[data]\ndataset = "digits"\n[teacher]\npath = "{folder}"\n'
                      '[student]\narch = "mlp"\nhidden = [8]\n[train]\nepochs = 1\n')
    assert main(["run", str(recipe), "--out", str(tmp_path / "run"), "--quiet"]) == 1
    assert not marker.exists() and (tmp_path / "victim").is_dir()


def test_a_registered_name_loads_and_a_trusted_path_is_the_callers_choice(tmp_path):
    model = build_mlp((1, 4, 4), 3, hidden=(5,))
    saved = distill.save(model, tmp_path / "mine", architecture="distill.students:build_mlp",
                         kwargs={"input_shape": [1, 4, 4], "num_classes": 3, "hidden": [5]})
    with pytest.raises(UntrustedCodeError):
        distill.load(saved)
    assert isinstance(distill.load(saved, trust_code=True), torch.nn.Sequential)
    register_architecture("distill.students:build_mlp")(build_mlp)
    try:  # registering it is the other way to vouch for it
        assert isinstance(distill.load(saved), torch.nn.Sequential)
    finally:
        ARCHITECTURES.unregister("distill.students:build_mlp")


def test_config_sizes_beyond_the_weights_are_refused_before_anything_is_built(tmp_path):
    folder = _folder(tmp_path, "mlp", {"input_shape": [1, 8, 8], "num_classes": 10,
                                       "hidden": [40000, 40000]})  # 6.4 GB of float32
    started = time.perf_counter()
    with pytest.raises(ArtifactError, match="nothing was allocated"):
        distill.load(folder)
    assert time.perf_counter() - started < 5


def test_a_tiny_resized_file_cannot_declare_huge_layers(tmp_path):
    # a zero-element tensor declares 60,000 channels; the kernel size comes from the config:
    # rebuilt as declared, that convolution alone would be 60,000 x 60,000 x 3 x 3 floats
    tensors = {"0.weight": torch.zeros(60000, 60000, 0, 0)}
    folder = _folder(tmp_path, "cnn", {"input_shape": [1, 8, 8], "num_classes": 2,
                                       "channels": [4]}, tensors, resized=True)
    assert (folder / WEIGHTS).stat().st_size < 200
    built_on = []

    @register_architecture("probe-mlp")
    def probe(**kwargs):
        built_on.append(torch.empty(0).device.type)  # the default device during the build
        return build_cnn(**kwargs)

    try:
        config = json.loads((folder / CONFIG).read_text())
        (folder / CONFIG).write_text(json.dumps({**config, "architecture": "probe-mlp"}))
        with pytest.raises(ArtifactError, match="does not match"):
            distill.load(folder)
    finally:
        ARCHITECTURES.unregister("probe-mlp")
    assert built_on == ["meta"]  # checked on the meta device, never built for real


def test_a_resized_model_whose_shapes_match_its_file_still_loads(tmp_path):
    from distill.prune import prune_structured

    model = build_mlp((1, 8, 8), 10, hidden=(32, 16))
    pruned = prune_structured(model, torch.randn(2, 1, 8, 8), 0.5)
    folder = distill.save(pruned, tmp_path / "pruned")
    loaded = distill.load(folder)
    x = torch.randn(3, 1, 8, 8)
    torch.testing.assert_close(loaded(x), pruned.eval()(x))


def test_a_hugging_face_config_larger_than_its_weights_is_refused(tmp_path):
    transformers = pytest.importorskip("transformers")
    from distill.hf.io import load_model

    folder = tmp_path / "hf"
    folder.mkdir()
    config = transformers.BertConfig(hidden_size=4096, num_hidden_layers=48,
                                     num_attention_heads=32, intermediate_size=16384,
                                     vocab_size=30522)  # about 10 billion... bytes of float32
    config.architectures = ["BertModel"]
    config.save_pretrained(folder)
    safetensors.torch.save_file({"embeddings.word_embeddings.weight": torch.zeros(4, 4)},
                                str(folder / "model.safetensors"))
    with pytest.raises(ValueError, match="refusing to allocate"):
        distill.load(folder)
    with pytest.raises(ValueError, match="refusing to allocate"):
        load_model(folder, "base")


def test_hugging_face_remote_code_needs_an_explicit_opt_in(tmp_path):
    pytest.importorskip("transformers")
    from distill.hf.io import UntrustedHFCodeError, load_model, load_tokenizer

    folder = tmp_path / "remote"
    folder.mkdir()
    marker = tmp_path / "ran"
    code = f"open({str(marker)!r}, 'w').close()\nfrom transformers import BertConfig\n"
    (folder / "configuration_evil.py").write_text(code + "class EvilConfig(BertConfig): pass\n")
    (folder / "modeling_evil.py").write_text(code)
    (folder / "config.json").write_text(json.dumps({
        "model_type": "evil", "architectures": ["EvilModel"],
        "auto_map": {"AutoConfig": "configuration_evil.EvilConfig",
                     "AutoModel": "modeling_evil.EvilModel",
                     "AutoTokenizer": ["tokenization_evil.EvilTokenizer", None]},
        "hidden_size": 8}))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "auto_map": {"AutoTokenizer": ["tokenization_evil.EvilTokenizer", None]}}))
    (folder / "tokenization_evil.py").write_text(code)
    safetensors.torch.save_file({"x": torch.zeros(2)}, str(folder / "model.safetensors"))
    with pytest.raises(UntrustedHFCodeError, match="trust_remote_code=True"):
        load_model(folder, "base")  # no prompt: refused at once, stdin or not
    with pytest.raises((UntrustedHFCodeError, ValueError, OSError)):
        load_tokenizer(folder)
    with pytest.raises(ArtifactError):
        distill.load(folder)  # names no class of transformers' own
    assert not marker.exists()


def test_a_pinned_sha256_refuses_any_other_weights(tmp_path):
    import hashlib

    folder = distill.save(build_mlp((1, 4, 4), 3, hidden=(5,)), tmp_path / "pinned")
    digest = hashlib.sha256((folder / WEIGHTS).read_bytes()).hexdigest()
    assert isinstance(distill.load(folder, sha256=digest), torch.nn.Module)
    distill.save(build_mlp((1, 4, 4), 3, hidden=(5,)), folder)  # other weights, same shapes
    with pytest.raises(ArtifactError, match="is not the pinned"):
        distill.load(folder, sha256=digest)
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(f'[data]\ndataset = "digits"\n[teacher]\npath = "{folder}"\n'
                      f'sha256 = "{digest}"\n[student]\narch = "mlp"\nhidden = [8]\n'
                      '[train]\nepochs = 1\n')
    assert main(["run", str(recipe), "--out", str(tmp_path / "run"), "--quiet"]) == 1
    assert not (tmp_path / "run" / "metrics.json").exists()
