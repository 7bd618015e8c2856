"""Structured pruning: smaller dense layers, the same inputs and outputs, saved and reloaded."""

from __future__ import annotations

import pytest
import torch

import distill
from distill.data.digits import load_digits
from distill.evaluate.size import count_parameters
from distill.prune import prune_structured

pytest.importorskip("torch_pruning")


@pytest.fixture(scope="module")
def digits():
    return load_digits("train"), load_digits("test")


def _cnn(seed=0):
    torch.manual_seed(seed)
    return distill.build_cnn((1, 8, 8), 10, channels=(16, 32), convs_per_stage=2, hidden=24)


def _convs(model):
    return [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]


@pytest.mark.parametrize("importance", ["magnitude", "activation", "taylor"])
def test_half_the_channels_go_and_the_model_still_maps_images_to_ten_classes(digits, importance):
    train, test = digits
    model = _cnn()
    before = count_parameters(model)
    prune_structured(model, test.inputs[:2], 0.5, importance=importance, data=train)
    assert [c.out_channels for c in _convs(model)] == [8, 8, 16, 16]
    assert [c.in_channels for c in _convs(model)] == [1, 8, 8, 16]  # inputs follow outputs
    assert model[-1].out_features == 10 and model[-3].out_features == 12  # hidden 24 -> 12
    assert model(test.inputs[:5]).shape == (5, 10)
    assert count_parameters(model) < 0.35 * before


def test_the_data_driven_importances_choose_differently(digits):
    train, test = digits
    chosen = {}
    for importance in ("magnitude", "taylor"):
        model = distill.train_model(_cnn(), train, epochs=2, batch_size=64, progress=False).student
        weights = model[0].weight.detach().clone()
        prune_structured(model, test.inputs[:2], 0.5, importance=importance, data=train)
        kept = model[0].weight.detach()
        chosen[importance] = {int((weights - k).flatten(1).abs().sum(1).argmin())
                              for k in kept}  # which of the 16 first-layer filters survived
    assert chosen["magnitude"] != chosen["taylor"]


def test_a_pruned_model_saves_and_loads_with_its_new_shapes(digits, tmp_path):
    train, test = digits
    model = prune_structured(_cnn(), test.inputs[:2], 0.5)
    distill.train_model(model, train, epochs=1, batch_size=64, progress=False)
    distill.save(model, tmp_path / "pruned")
    loaded = distill.load(tmp_path / "pruned")
    x = test.inputs[:8]
    torch.testing.assert_close(loaded(x), model.eval()(x))
    assert count_parameters(loaded) == count_parameters(model)
    distill.save(loaded, tmp_path / "again")  # a reloaded pruned model saves as pruned too
    assert count_parameters(distill.load(tmp_path / "again")) == count_parameters(model)


def test_bad_settings_are_named(digits):
    _, test = digits
    with pytest.raises(ValueError, match="ratio must be within"):
        prune_structured(_cnn(), test.inputs[:2], 1.0)
    with pytest.raises(ValueError, match="needs calibration data"):
        prune_structured(_cnn(), test.inputs[:2], 0.5, importance="activation")


class _Residual(torch.nn.Module):
    """conv-bn-relu, then two residual blocks that add to it: coupled channels."""

    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(1, 16, 3, padding=1),
                                        torch.nn.BatchNorm2d(16), torch.nn.ReLU())
        self.blocks = torch.nn.ModuleList(
            torch.nn.Sequential(torch.nn.Conv2d(16, 24, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.Conv2d(24, 16, 3, padding=1), torch.nn.BatchNorm2d(16))
            for _ in range(2))
        self.head = torch.nn.Linear(16, 10)

    def forward(self, x):
        h = self.stem(x)
        for block in self.blocks:
            h = torch.relu(h + block(h))
        return self.head(h.mean((2, 3)))


def test_channels_shared_through_residual_additions_go_together(digits):
    _, test = digits
    torch.manual_seed(0)
    model = _Residual().eval()
    prune_structured(model, test.inputs[:2], 0.5)
    # the residual stream (stem, each block's last conv and norm, the head's input) shrinks as
    # one: a channel removed from one of them is removed from all
    widths = {model.stem[0].out_channels, model.stem[1].num_features, model.head.in_features}
    widths |= {b[2].out_channels for b in model.blocks} | {b[3].num_features for b in model.blocks}
    assert widths == {8}
    assert {b[0].out_channels for b in model.blocks} == {12}  # inner widths: their own
    assert model(test.inputs[:3]).shape == (3, 10)
