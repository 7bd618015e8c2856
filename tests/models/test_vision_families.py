"""transformers' image classifiers built offline from a config: every family builds tiny, runs,
saves and reloads to identical logits, and distills like any other model."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import safetensors.torch
import torch

import distill
from distill.data.base import ArrayDataset, DatasetInfo
from distill.hf.io import UntrustedHFCodeError
from distill.registry import UnknownNameError
from distill.students import ARCHITECTURES, build, build_vision_model, load_vision_model

pytest.importorskip("transformers")

FAMILIES = ["resnet", "mobilenet_v2", "efficientnet", "convnext", "vit", "swin"]


def _trained_a_little(model: torch.nn.Module, channels: int, size: int) -> torch.nn.Module:
    """Move the batch-norm statistics off their initial values, so a reload that dropped the
    buffers would show."""
    model.train()
    with torch.no_grad():
        model(torch.randn(4, channels, size, size))
    return model.eval()


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_builds_tiny_runs_and_reloads_to_identical_logits(tmp_path, family):
    torch.manual_seed(0)
    model = build_vision_model(family, 3, image_size=8, channels=1)
    assert sum(p.numel() for p in model.parameters()) < 100_000
    assert model.config.num_labels == 3 and model.config.num_channels == 1
    model = _trained_a_little(model, 1, 8)
    x = torch.randn(5, 1, 8, 8)
    logits = model(x).logits
    assert logits.shape == (5, 3) and torch.isfinite(logits).all()

    folder = distill.save(model, tmp_path / family)
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == [type(model).__name__]  # a plain save_pretrained folder
    reloaded = distill.load(folder)
    assert type(reloaded) is type(model) and not reloaded.training
    assert torch.equal(reloaded(x).logits, logits)
    again = load_vision_model(folder)
    assert torch.equal(again(x).logits, logits)


def test_families_build_through_the_architecture_registry_with_overrides():
    model = build("hf-vision", family="convnext", num_classes=4, image_size=16, channels=3,
                  hidden_sizes=[4, 8], depths=[2, 1])
    assert model.config.hidden_sizes == [4, 8] and model.config.depths == [2, 1]
    assert model(torch.randn(2, 3, 16, 16)).logits.shape == (2, 4)
    assert "hf-vision" in ARCHITECTURES.names()
    vit = build_vision_model("vit", 2, image_size=(8, 12), channels=1, patch_size=4)
    assert vit(torch.randn(1, 1, 8, 12)).logits.shape == (1, 2)


def test_small_presets_are_larger_than_tiny_and_base_is_the_library_default():
    transformers = pytest.importorskip("transformers")
    tiny = build_vision_model("resnet", 10, image_size=32, channels=3)
    small = build_vision_model("resnet", 10, image_size=32, channels=3, size="small")
    assert small.config.depths == [2, 2, 2, 2]  # ResNet-18
    assert sum(p.numel() for p in small.parameters()) > 50 * sum(
        p.numel() for p in tiny.parameters())
    base = build_vision_model("mobilenet_v2", 10, image_size=32, channels=3, size="base")
    assert base.config.depth_multiplier == transformers.MobileNetV2Config().depth_multiplier
    b0 = build_vision_model("efficientnet", 10, image_size=32, channels=3, size="small")
    assert b0.config.hidden_dim == 1280  # EfficientNet-B0's last width, derived from the preset


def test_unknown_family_size_and_config_field_are_named_with_a_suggestion():
    with pytest.raises(UnknownNameError, match="did you mean 'resnet'"):
        build_vision_model("resnt", 3, image_size=8, channels=1)
    with pytest.raises(UnknownNameError, match="vision model size 'huge'"):
        build_vision_model("vit", 3, image_size=8, channels=1, size="huge")
    with pytest.raises(UnknownNameError, match="vit config field 'hiden_size'.*'hidden_size'"):
        build_vision_model("vit", 3, image_size=8, channels=1, hiden_size=32)
    with pytest.raises(ValueError, match="channels= argument"):
        build_vision_model("swin", 3, image_size=8, channels=1, num_channels=3)


@pytest.mark.parametrize("family", ["vit", "swin"])
def test_an_image_size_the_patches_do_not_divide_is_refused(family):
    with pytest.raises(ValueError, match=r"image_size 10x10 is not divisible by its patch_size"):
        build_vision_model(family, 3, image_size=10, channels=1, patch_size=4)


def test_images_too_small_for_the_stages_are_refused_at_build_time():
    # ConvNeXt's defaults downsample 32x: a 28-pixel image runs out before the last stage
    with pytest.raises(ValueError, match=r"a base convnext cannot take 1x28x28 images"):
        build_vision_model("convnext", 3, image_size=28, channels=1, size="base")


def test_load_vision_model_gives_a_new_head_and_refuses_inconsistent_folders(tmp_path):
    model = _trained_a_little(build_vision_model("resnet", 3, image_size=8, channels=1), 1, 8)
    folder = distill.save(model, tmp_path / "resnet")
    five = load_vision_model(folder, num_classes=5)
    assert five.config.num_labels == 5 and five(torch.randn(2, 1, 8, 8)).logits.shape == (2, 5)
    kept = "resnet.embedder.embedder.convolution.weight"
    assert torch.equal(five.state_dict()[kept], model.state_dict()[kept])

    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "hidden_sizes": [8, 12]}))
    with pytest.raises(ValueError, match=r"do not fit.*weights \(16, 8, 3, 3\), config "
                                         r"\(12, 8, 3, 3\)"):
        load_vision_model(folder, num_classes=5)


def test_config_fields_that_contradict_each_other_are_refused_by_name():
    with pytest.raises(ValueError, match=r"cannot build a tiny convnext with \{'hidden_sizes'"):
        build_vision_model("convnext", 3, image_size=8, channels=1, hidden_sizes=[8],
                           depths=[1, 1])


def test_a_folder_with_its_own_modeling_code_is_refused_without_trust(tmp_path):
    marker = tmp_path / "ran"
    folder = tmp_path / "remote"
    folder.mkdir()
    code = f"open({str(marker)!r}, 'w').close()\n"
    (folder / "configuration_evil.py").write_text(code)
    (folder / "modeling_evil.py").write_text(code)
    (folder / "config.json").write_text(json.dumps({
        "model_type": "evil", "architectures": ["EvilForImageClassification"],
        "auto_map": {"AutoConfig": "configuration_evil.EvilConfig",
                     "AutoModelForImageClassification": "modeling_evil.EvilModel"}}))
    safetensors.torch.save_file({"x": torch.zeros(2)}, str(folder / "model.safetensors"))
    with pytest.raises(UntrustedHFCodeError, match="trust_remote_code=True"):
        load_vision_model(folder)
    assert not marker.exists()


def test_a_hub_id_offline_fails_at_once_with_a_clear_message(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(OSError, match="hub id needs network access|hub cannot be asked"):
        load_vision_model("no-such-user/no-such-vision-model")


def test_a_tiny_resnet_teacher_distills_into_a_tiny_mobilenet_v2_student():
    torch.manual_seed(0)
    x = torch.randn(48, 1, 8, 8)
    labels = (x.mean(dim=(1, 2, 3)) > 0).long()
    data = ArrayDataset(x, labels, DatasetInfo("toy images", (1, 8, 8), 2))
    teacher = build_vision_model("resnet", 2, image_size=8, channels=1)
    student = build_vision_model("mobilenet_v2", 2, image_size=8, channels=1)
    before = {k: v.clone() for k, v in student.state_dict().items()}
    result = distill.distill(teacher, student, data, eval=data, epochs=1, batch_size=16,
                             progress=False)
    assert result.history[0]["epoch"] == 1 and result.history[0]["train_loss"] > 0
    after = result.student.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_importing_distill_does_not_import_transformers():
    code = ("import sys, distill, distill.students as s\n"
            "assert 'hf-vision' in s.ARCHITECTURES\n"
            "s.load_weights, s.build_user_model\n"
            "print('transformers' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
