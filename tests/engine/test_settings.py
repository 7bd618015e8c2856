"""One declaration of the training settings: the engine, the one-call API and recipes share it."""

from __future__ import annotations

import pytest
import torch

import distill
from distill.engine.config import TrainConfig, TrainSettings
from distill.recipes.schema import TrainSpec


def _data(n: int = 64):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, 1, 4, 4, generator=generator)
    return torch.utils.data.TensorDataset(x, torch.randint(0, 3, (n,), generator=generator))


def test_the_recipe_table_is_the_engine_settings_with_more_epochs():
    assert set(TrainSpec.model_fields) == set(TrainSettings.model_fields)
    assert TrainSpec().epochs == 10 and TrainSettings().epochs == 1
    assert set(TrainSettings.model_fields) < set(TrainConfig.model_fields)


def test_keywords_override_a_config_and_a_recipe_table_is_a_config():
    spec = TrainSpec(epochs=3, lr=0.01, threads=1, augment="flip-shift")
    config = TrainConfig.from_settings(spec, lr=0.02)
    assert (config.epochs, config.lr, config.num_threads) == (3, 0.02, 1)
    assert callable(config.augmentation())
    assert TrainConfig.from_settings(None, num_threads=2).threads == 2
    assert TrainConfig(augment="none").augment is None


def test_distill_takes_a_config_and_keywords():
    student = distill.build_mlp((1, 4, 4), 3, hidden=(4,))
    teacher = distill.build_mlp((1, 4, 4), 3, hidden=(8,))
    result = distill.distill(teacher, student, _data(), config=TrainConfig(epochs=2),
                             batch_size=32, progress=False)
    assert result.metrics["epochs"] == 2 and len(result.history) == 2


@pytest.mark.parametrize("call", ["distill", "train_model"])
def test_an_unknown_setting_is_a_type_error_with_a_did_you_mean(call):
    student = distill.build_mlp((1, 4, 4), 3, hidden=(4,))
    args = (student, student, _data()) if call == "distill" else (student, _data())
    with pytest.raises(TypeError, match="unknown training setting 'epoch'; did you mean 'epochs'"):
        getattr(distill, call)(*args, epoch=2)


@pytest.mark.parametrize("settings,message", [
    ({"epochs": 0}, "epochs=0"),
    ({"lr": float("nan")}, "lr=nan"),
    ({"seed": -1}, "seed=-1"),
    ({"augment": "flip-shfit"}, "did you mean 'flip-shift'"),
    ({"augment": 3}, "augment"),
    ({"optimizer": "lion"}, "optimizer must be 'adamw', 'adam' or 'sgd', got 'lion'"),
    ({"num_threads": 0}, "threads"),
])
def test_a_bad_value_names_the_setting(settings, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**settings)
