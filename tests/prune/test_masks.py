"""Unstructured and N:M masks: exact sparsity, the right weights kept, and clean saving."""

from __future__ import annotations

import pytest
import torch

import distill
from distill.data.digits import load_digits
from distill.prune import (
    magnitude_prune,
    nm_prune,
    overall_sparsity,
    prunable_layers,
    sparsity_report,
)


def _mlp(seed=0):
    torch.manual_seed(seed)
    return distill.build_mlp((1, 8, 8), 10, hidden=(32, 16))


def test_global_pruning_reaches_the_target_and_keeps_the_largest_weights():
    model = _mlp()
    before = torch.cat([m.weight.detach().abs().flatten() for _, m in prunable_layers(model)])
    magnitude_prune(model, 0.5)
    assert overall_sparsity(model) == pytest.approx(0.5, abs=1e-3)
    after = torch.cat([m.weight.detach().flatten() for _, m in prunable_layers(model)])
    kept, dropped = before[after != 0], before[after == 0]
    assert kept.min() >= dropped.max()
    rows = sparsity_report(model)
    assert [r.name for r in rows] == ["1", "3", "5"] and len({r.sparsity for r in rows}) == 3


def test_per_layer_pruning_and_a_second_target_counts_what_is_zero_already():
    model = magnitude_prune(_mlp(), 0.5, scope="layer")
    assert all(r.sparsity == pytest.approx(0.5, abs=0.01) for r in sparsity_report(model))
    magnitude_prune(model, 0.7)
    assert overall_sparsity(model) == pytest.approx(0.7, abs=1e-3)
    with pytest.raises(ValueError, match="sparsity must be within"):
        magnitude_prune(model, 1.0)
    with pytest.raises(ValueError, match="skip names no layer"):
        magnitude_prune(model, 0.5, skip=["head"])


def test_masks_survive_training_and_are_saved_as_plain_zeros(tmp_path):
    train, test = load_digits("train"), load_digits("test")
    model = magnitude_prune(_mlp(), 0.6, skip=["5"])
    zeros = [m.weight == 0 for _, m in prunable_layers(model)]
    distill.train_model(model, train, epochs=2, batch_size=64, progress=False)
    for mask, (_, m) in zip(zeros, prunable_layers(model), strict=True):
        assert bool((m.weight[mask] == 0).all())  # pruned weights did not grow back
    assert sparsity_report(model)[-1].sparsity == 0.0  # the skipped head stays dense
    distill.save(model, tmp_path / "pruned")
    loaded = distill.load(tmp_path / "pruned")
    assert not any("weight_orig" in k for k in loaded.state_dict())
    assert any("weight_orig" in k for k in model.state_dict())  # the user's model keeps masks
    x = test.inputs[:16]
    torch.testing.assert_close(loaded(x), model.eval()(x))
    assert overall_sparsity(loaded) == pytest.approx(overall_sparsity(model))


def test_two_of_every_four_weights_along_the_input_are_kept():
    torch.manual_seed(0)
    model = distill.build_cnn((1, 8, 8), 10, channels=(8, 16))
    nm_prune(model, 2, 4)
    assert model.distill_nm_skipped == ["0"]  # one input channel: no group of four
    conv = model[4].weight.detach()  # (16, 8, 3, 3): groups along the 8 input channels
    groups = conv.movedim(1, -1).reshape(-1, 4)
    assert bool(((groups != 0).sum(1) == 2).all())
    linear = model[-1].weight.detach().reshape(10, -1, 4)
    assert bool(((linear != 0).sum(-1) == 2).all())
    with pytest.raises(ValueError, match="0 < n < m"):
        nm_prune(model, 4, 4)
