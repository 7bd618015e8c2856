"""Ensembles of teachers: the combination rules, mixed member kinds, and clear refusals."""

from __future__ import annotations

import pytest
import torch

import distill
from distill.data import load_digits
from distill.teachers import EnsembleTeacher, PrecomputedTeacher, TopKTargets, cache_teacher


@pytest.fixture(scope="module")
def data():
    return load_digits("train")


@pytest.fixture(scope="module")
def teachers(data):
    models = []
    for seed, hidden in ((0, 32), (1, 24), (2, 16)):
        torch.manual_seed(seed)
        m = distill.build_mlp((1, 8, 8), 10, hidden=(hidden,))
        distill.train_model(m, data, epochs=2, progress=False, seed=seed)
        models.append(m.eval())
    return models


def _outputs(models, x):
    with torch.no_grad():
        return [m(x) for m in models]


def test_probability_average_is_the_mixture(teachers, data):
    x = data.inputs[:50]
    z = _outputs(teachers, x)
    got = EnsembleTeacher(teachers, weights=[2, 1, 1]).logits(x)
    want = 0.5 * z[0].softmax(-1) + 0.25 * z[1].softmax(-1) + 0.25 * z[2].softmax(-1)
    torch.testing.assert_close(got.softmax(-1), want)
    torch.testing.assert_close(got.exp().sum(-1), torch.ones(50))  # log-probabilities


def test_logit_average(teachers, data):
    x = data.inputs[:50]
    z = _outputs(teachers, x)
    got = EnsembleTeacher(teachers, combine="logits").logits(x)
    torch.testing.assert_close(got, (z[0] + z[1] + z[2]) / 3)


def test_members_can_be_online_precomputed_and_cached(tmp_path, teachers, data):
    idx = torch.arange(100, 160)
    x = data.inputs[idx]
    pre = PrecomputedTeacher.from_module(teachers[1], data)
    cached = cache_teacher(teachers[2], data, tmp_path / "c", dtype="float32", progress=False)
    mixed = EnsembleTeacher([teachers[0], pre, cached]).logits(x, idx)
    online = EnsembleTeacher(teachers).logits(x, idx)
    torch.testing.assert_close(mixed, online, rtol=1e-4, atol=1e-4)


def test_a_topk_member_joins_with_its_dropped_mass_spread(tmp_path, teachers, data):
    idx = torch.arange(20)
    cached = cache_teacher(teachers[0], data, tmp_path / "k", top_k=10, dtype="float32",
                           progress=False)  # every class kept: exact
    got = EnsembleTeacher([cached, teachers[1]]).logits(data.inputs[idx], idx)
    want = EnsembleTeacher(teachers[:2]).logits(data.inputs[idx])
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_distilling_from_an_ensemble(teachers, data):
    test = load_digits("test")
    torch.manual_seed(5)
    student = distill.build_mlp((1, 8, 8), 10, hidden=(16,))
    result = distill.distill(EnsembleTeacher(teachers), student, data, eval=test, epochs=3,
                             lr=1e-2, progress=False)
    assert 0 < result.metrics["agreement"] <= 1  # evaluated against the ensemble itself


def test_refusals(teachers):
    with pytest.raises(ValueError, match="at least one teacher"):
        EnsembleTeacher([])
    with pytest.raises(ValueError, match="2 weights for 3 teachers"):
        EnsembleTeacher(teachers, weights=[1, 1])
    with pytest.raises(ValueError, match="non-negative"):
        EnsembleTeacher(teachers, weights=[1, -1, 1])
    with pytest.raises(ValueError, match="combine must be"):
        EnsembleTeacher(teachers, combine="vote")
    other = distill.build_mlp((1, 8, 8), 7, hidden=(4,))
    with pytest.raises(ValueError, match="member 1 gives outputs of shape \\(4, 7\\)"):
        EnsembleTeacher([teachers[0], other]).logits(torch.zeros(4, 1, 8, 8))


def test_fingerprint_depends_on_members_and_rule(teachers):
    a = EnsembleTeacher(teachers).fingerprint()
    assert a == EnsembleTeacher(teachers).fingerprint()
    assert a != EnsembleTeacher(teachers, combine="logits").fingerprint()
    assert a != EnsembleTeacher(teachers[:2]).fingerprint()


def test_dense_logits_of_topk_targets_keep_kept_entries_and_leftover(data, teachers):
    with torch.no_grad():
        z = teachers[0](data.inputs[:30])
    targets = TopKTargets.from_logits(z, 4)
    dense = targets.dense_logits().softmax(-1)
    torch.testing.assert_close(dense.gather(-1, targets.indices), z.softmax(-1).gather(
        -1, targets.indices))
    assert dense.shape == z.shape


def test_the_ensemble_module_matches_the_signal_and_counts_every_member(teachers, data):
    x = data.inputs[:40]
    module = distill.Ensemble(teachers, weights=[1, 2, 1])
    torch.testing.assert_close(module(x), EnsembleTeacher(teachers, weights=[1, 2, 1]).logits(x))
    from distill.evaluate import count_parameters

    assert count_parameters(module) == sum(count_parameters(m) for m in teachers)
    other = distill.build_mlp((1, 8, 8), 7, hidden=(4,))
    with pytest.raises(ValueError, match="member 1 gives outputs"):
        distill.Ensemble([teachers[0], other])(x)
