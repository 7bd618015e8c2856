"""Gradient accumulation, gradient clipping and bf16 autocast in the one training loop."""

from __future__ import annotations

import pytest
import torch

import distill
from distill.data.digits import load_digits
from distill.engine.config import TrainConfig


@pytest.fixture(scope="module")
def digits():
    return load_digits("train"), load_digits("test")


@pytest.fixture(scope="module")
def teacher(digits):
    torch.manual_seed(0)
    model = distill.build_mlp((1, 8, 8), 10, hidden=(64,))
    distill.train_model(model, digits[0], epochs=3, batch_size=64, progress=False)
    return model.eval()


def _student(seed: int = 1):
    torch.manual_seed(seed)
    return distill.build_mlp((1, 8, 8), 10, hidden=(32,))


def test_two_accumulated_half_batches_make_the_same_update_as_one_full_batch(digits, teacher):
    train = digits[0]
    full, halves = _student(), _student()
    common = dict(epochs=2, lr=1e-2, weight_decay=0.0, progress=False, seed=3)
    distill.distill(teacher, full, train, batch_size=32, **common)
    distill.distill(teacher, halves, train, batch_size=16, accumulate=2, **common)
    for a, b in zip(full.parameters(), halves.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-4)
    unaccumulated = _student()
    distill.distill(teacher, unaccumulated, train, batch_size=16, **common)
    assert not torch.allclose(unaccumulated[-1].weight, halves[-1].weight, atol=1e-3)


def test_bf16_autocast_trains_on_the_cpu_and_auto_stays_fp32_there(digits, teacher):
    train, test = digits
    bf16, auto, fp32 = _student(), _student(), _student()
    common = dict(epochs=3, batch_size=64, lr=1e-2, progress=False)
    result = distill.distill(teacher, bf16, train, eval=test, precision="bf16", **common)
    assert result.metrics["accuracy"] > 0.85
    assert all(p.dtype == torch.float32 for p in bf16.parameters())  # weights stay fp32
    distill.distill(teacher, auto, train, precision="auto", **common)
    distill.distill(teacher, fp32, train, **common)
    for a, b in zip(auto.parameters(), fp32.parameters(), strict=True):
        torch.testing.assert_close(a, b)  # "auto" on a CPU: plain fp32, the same numbers
    assert not torch.equal(bf16[-1].weight, fp32[-1].weight)  # bf16 rounding changed them


def test_clipping_bounds_each_update(digits, teacher):
    clipped = _student()
    before = [p.detach().clone() for p in clipped.parameters()]
    distill.distill(teacher, clipped, digits[0], epochs=1, batch_size=64, optimizer="sgd",
                    lr=1e-3, weight_decay=0.0, grad_clip=1e-3, warmup_ratio=0.0,
                    schedule="constant", progress=False)
    with torch.no_grad():
        moved = torch.sqrt(sum(((p - b) ** 2).sum() for p, b in
                               zip(clipped.parameters(), before, strict=True)))
    steps = -(-len(digits[0]) // 64)
    # momentum SGD: each step moves at most lr x clip / (1 - momentum) = 1e-5
    assert float(moved) <= steps * 1e-5 + 1e-7


@pytest.mark.parametrize("settings,message", [
    ({"accumulate": 0}, "accumulate"),
    ({"precision": "fp16"}, "precision must be"),
    ({"grad_clip": 0.0}, "grad_clip"),
])
def test_bad_settings_are_named(settings, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**settings)
