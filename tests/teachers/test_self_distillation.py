"""Self-distillation: born-again generations and an EMA ("mean") teacher."""

from __future__ import annotations

import pytest
import torch

import distill
from distill.data import load_digits


@pytest.fixture(scope="module")
def data():
    return load_digits("train"), load_digits("test")


def _make():
    return distill.build_mlp((1, 8, 8), 10, hidden=(16,))


def test_born_again_generations_learn_from_the_one_before(data):
    train, test = data
    results = distill.born_again(_make, train, generations=3, eval=test, epochs=8, lr=1e-2,
                                 progress=False)
    assert [r.metrics["generation"] for r in results] == [1, 2, 3]
    assert "agreement" not in results[0].metrics  # generation 1: hard labels, no teacher
    for r in results[1:]:
        assert r.metrics["agreement"] > 0.9  # follows the previous generation
    students = [r.student for r in results]
    assert len({id(s) for s in students}) == 3
    first = [p.detach().clone() for p in students[0].parameters()]
    for p, q in zip(first, students[0].parameters(), strict=True):
        torch.testing.assert_close(p, q)  # later generations do not touch earlier ones


def test_born_again_is_reproducible(data):
    train, _ = data
    a = distill.born_again(_make, train, generations=2, epochs=1, progress=False)
    b = distill.born_again(_make, train, generations=2, epochs=1, progress=False)
    for p, q in zip(a[-1].student.parameters(), b[-1].student.parameters(), strict=True):
        torch.testing.assert_close(p, q)


def test_born_again_refuses_a_factory_returning_the_same_model(data):
    train, _ = data
    model = _make()
    with pytest.raises(ValueError, match="new network on every call"):
        distill.born_again(lambda: model, train, generations=2, epochs=1, progress=False)
    with pytest.raises(ValueError, match="at least 1"):
        distill.born_again(_make, train, generations=0)


def test_ema_teacher_follows_the_student_as_a_moving_average(data):
    train, test = data
    torch.manual_seed(0)
    student = _make()
    start = [p.detach().clone() for p in student.parameters()]
    ema = distill.EMATeacher(student, decay=0.9)
    result = distill.distill(ema, student, train, eval=test, epochs=5, lr=1e-2, progress=False)
    assert result.metrics["accuracy"] > 0.75
    assert result.metrics["agreement"] > 0.8  # measured against the average as it is now
    moved = [(e - s).abs().sum() for e, s in zip(ema.module.parameters(), start, strict=True)]
    assert all(m > 0 for m in moved)  # the average moved with the student
    lag = [(e - p).abs().sum() for e, p in
           zip(ema.module.parameters(), student.parameters(), strict=True)]
    assert any(g > 0 for g in lag)  # ...but is not the student
    assert not any(p.requires_grad for p in ema.module.parameters())


def test_ema_decay_zero_is_the_student_itself(data):
    train, _ = data
    torch.manual_seed(0)
    student = _make()
    ema = distill.EMATeacher(student, decay=0.0)
    distill.distill(ema, student, train, epochs=1, progress=False)
    for e, p in zip(ema.module.parameters(), student.parameters(), strict=True):
        torch.testing.assert_close(e, p)


def test_ema_refuses_another_model_and_bad_decay(data):
    train, _ = data
    with pytest.raises(ValueError, match="decay must be within"):
        distill.EMATeacher(_make(), decay=1.0)
    ema = distill.EMATeacher(_make())
    with pytest.raises(ValueError, match="follows the student it was built from"):
        distill.distill(ema, _make(), train, epochs=1, progress=False)
