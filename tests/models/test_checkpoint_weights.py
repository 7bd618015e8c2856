"""load_weights: safetensors always, pickles only when asked, and misfits named precisely."""

from __future__ import annotations

import pytest
import safetensors.torch
import torch

from distill.artifacts import ArtifactError, PickleRefusedError
from distill.students import build_cnn, build_mlp, load_weights
from distill.students.checkpoints import WeightsMismatchError


def _mlp(seed: int, hidden=(6,)) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_mlp((1, 4, 4), 3, hidden=hidden)


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    x = torch.randn(2, 1, 4, 4)
    return torch.equal(a.eval()(x), b.eval()(x))


def test_a_safetensors_file_that_fits_loads_into_any_architecture(tmp_path):
    source, target = _mlp(0), _mlp(1)
    file = tmp_path / "weights.safetensors"
    safetensors.torch.save_file(source.state_dict(), str(file))
    assert not _same(source, target)
    assert load_weights(target, file) is target
    assert _same(source, target)


def test_a_shape_misfit_names_the_first_tensor_both_shapes_and_the_key_differences(tmp_path):
    tensors = _mlp(0, hidden=(8,)).state_dict()
    tensors["extra.weight"] = torch.zeros(2)
    del tensors["3.bias"]
    file = tmp_path / "wider.safetensors"
    safetensors.torch.save_file(tensors, str(file))
    target = _mlp(1)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(WeightsMismatchError) as info:
        load_weights(target, file)
    message = str(info.value)
    assert "tensor '1.weight' has shape (8, 16) in the file but (6, 16) in the model" in message
    assert "3 of 4 tensors differ in shape" in message  # 1.weight, 1.bias, 3.weight
    assert "1 missing from the file ('3.bias')" in message
    assert "1 in the file but not in the model ('extra.weight')" in message
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())  # untouched


def test_missing_and_unexpected_names_alone_are_refused_unless_not_strict(tmp_path):
    source = _mlp(0)
    tensors = {k: v for k, v in source.state_dict().items() if not k.startswith("3.")}
    file = tmp_path / "body.safetensors"
    safetensors.torch.save_file(tensors, str(file))
    target = _mlp(1)
    with pytest.raises(WeightsMismatchError, match=r"2 missing from the file \('3.weight', "
                                                   r"'3.bias'\).*strict=False"):
        load_weights(target, file)
    load_weights(target, file, strict=False)
    assert torch.equal(target.state_dict()["1.weight"], source.state_dict()["1.weight"])


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".bin"])
def test_a_pickle_is_refused_without_opt_in_and_read_weights_only_with_it(tmp_path, suffix):
    source, target = _mlp(0), _mlp(1)
    file = tmp_path / f"checkpoint{suffix}"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v
                                           for k, v in source.state_dict().items()}}, file)
    with pytest.raises(PickleRefusedError, match="allow_pickle=True"):
        load_weights(target, file)
    assert not _same(source, target)
    load_weights(target, file, allow_pickle=True)  # nested and DDP-prefixed: unwrapped
    assert _same(source, target)


def test_a_pickle_of_arbitrary_objects_is_not_unpickled_even_with_opt_in(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    file = tmp_path / "evil.pt"
    torch.save({"state_dict": Payload()}, file)
    with pytest.raises(ArtifactError, match="weights_only=True"):
        load_weights(_mlp(0), file, allow_pickle=True)
    assert not marker.exists()


def test_other_inputs_get_one_clear_message(tmp_path):
    model = build_cnn((1, 8, 8), 2, channels=(4,))
    with pytest.raises(FileNotFoundError, match="no such weights file"):
        load_weights(model, tmp_path / "absent.safetensors")
    with pytest.raises(ArtifactError, match="is a folder"):
        load_weights(model, tmp_path)
    (tmp_path / "weights.npz").write_bytes(b"x")
    with pytest.raises(ArtifactError, match="unknown weights format '.npz'"):
        load_weights(model, tmp_path / "weights.npz")
    (tmp_path / "broken.safetensors").write_bytes(b"not a header")
    with pytest.raises(ArtifactError, match="not a readable safetensors file"):
        load_weights(model, tmp_path / "broken.safetensors")
    torch.save({"lr": 0.1}, tmp_path / "options.pt")
    with pytest.raises(ArtifactError, match="entry 'lr' is a float, not a tensor"):
        load_weights(model, tmp_path / "options.pt", allow_pickle=True)
