"""Precomputed teacher outputs: the same training as an online teacher, without rerunning it."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

import distill
from distill.data import load_digits
from distill.teachers import PrecomputedTeacher


@pytest.fixture(scope="module")
def setup():
    train, test = load_digits("train"), load_digits("test")
    torch.manual_seed(0)
    teacher = distill.build_cnn((1, 8, 8), 10, channels=(8, 16), hidden=32)
    distill.train_model(teacher, train, epochs=4, progress=False)
    return teacher.eval(), train, test


def _student():
    torch.manual_seed(1)
    return distill.build_mlp((1, 8, 8), 10, hidden=(16,))


class CountingTeacher(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner, self.samples = inner, 0

    def forward(self, x):
        self.samples += len(x)
        return self.inner(x)


def test_matches_online_training_and_runs_the_teacher_once(setup):
    teacher, train, test = setup
    online = distill.distill(teacher, _student(), train, eval=test, epochs=3, progress=False)
    counting = CountingTeacher(teacher)
    cached = distill.distill(counting, _student(), train, eval=test, epochs=3, progress=False,
                             precompute_teacher=True)
    # once over the training set, once over the eval set (agreement); never again per epoch
    assert counting.samples == len(train) + len(test)
    for a, b in zip(online.student.parameters(), cached.student.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_refuses_augmentation_and_unindexed_loaders(setup):
    teacher, train, _ = setup
    with pytest.raises(ValueError, match="cannot follow augmented views"):
        distill.distill(teacher, _student(), train, augment="flip-shift", precompute_teacher=True,
                        progress=False)
    loader = DataLoader(train, batch_size=32)
    with pytest.raises(ValueError, match="looked up by sample index"):
        distill.distill(teacher, _student(), loader, precompute_teacher=True, progress=False)


def test_rejects_non_finite_tables_naming_the_samples():
    table = torch.zeros(6, 3)
    table[4, 1] = float("inf")
    with pytest.raises(ValueError, match=r"1 samples \(first indices: \[4\]\)"):
        PrecomputedTeacher(table)


def test_eval_agreement_uses_the_teacher_on_the_eval_set(setup):
    teacher, train, test = setup
    online = distill.distill(teacher, _student(), train, eval=test, epochs=2, progress=False)
    cached = distill.distill(teacher, _student(), train, eval=test, epochs=2, progress=False,
                             precompute_teacher=True)
    assert cached.metrics["agreement"] == pytest.approx(online.metrics["agreement"], abs=0.01)


def test_a_bare_table_cannot_label_held_out_data():
    assert PrecomputedTeacher(torch.zeros(3, 2)).for_evaluation() is None
