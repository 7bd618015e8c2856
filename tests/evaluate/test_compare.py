"""compare / evaluate_models: teacher, student and baseline side by side on digits."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from distill import build_mlp, compare, evaluate_models
from distill.data import load_digits
from distill.evaluate import predict
from distill.evaluate.metrics import accuracy

ENTRY_KEYS = {"accuracy", "params", "size_bytes", "latency_ms_p50", "agreement", "kl_to_teacher"}
FAST = dict(batch_sizes=(1, 8), latency_repeats=5)


def _fit(model, data, steps, seed=0):
    """A few full-batch Adam steps: enough for distinct, well-above-chance accuracies."""
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(model(data.inputs), data.labels).backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def models():
    train = load_digits("train")
    torch.manual_seed(0)
    teacher = _fit(build_mlp((1, 8, 8), 10, hidden=(128,)), train, steps=60)
    torch.manual_seed(1)
    student = _fit(build_mlp((1, 8, 8), 10, hidden=(16,)), train, steps=15)
    torch.manual_seed(2)
    baseline = _fit(build_mlp((1, 8, 8), 10, hidden=(16,)), train, steps=3)
    return teacher, student, baseline


@pytest.fixture(scope="module")
def test_data():
    return load_digits("test")


@pytest.fixture(scope="module")
def result(models, test_data):
    teacher, student, baseline = models
    return compare(teacher, student, test_data, baseline=baseline, **FAST)


def test_keys(result):
    assert {
        "teacher",
        "student",
        "baseline",
        "retention",
        "speedup",
        "compression",
        "gap_closed",
    } <= set(result)
    for name in ("teacher", "student", "baseline"):
        assert set(result[name]) >= ENTRY_KEYS
        assert {"latency_ms_p95", "latency_ms_p50_b8", "latency_ms_p95_b8", "nll", "ece"} <= set(
            result[name]
        )
        assert result[name]["latency_threads"] == 1


def test_entries_match_the_models(models, test_data, result):
    teacher, student, baseline = models
    for name, model in zip(("teacher", "student", "baseline"), models, strict=True):
        logits = predict(model, test_data).logits
        assert result[name]["accuracy"] == pytest.approx(accuracy(logits, test_data.labels))
        assert result[name]["params"] == sum(p.numel() for p in model.parameters())
        assert 4 * result[name]["params"] < result[name]["size_bytes"]
        assert 0 < result[name]["latency_ms_p50"] <= result[name]["latency_ms_p95"]
    # the training above gives distinct accuracies, or the ratios below prove little
    t, s, b = (result[n]["accuracy"] for n in ("teacher", "student", "baseline"))
    assert t > s > b > 0.1


def test_teacher_is_its_own_reference(result):
    assert result["teacher"]["agreement"] == 1.0
    assert result["teacher"]["kl_to_teacher"] == pytest.approx(0.0, abs=1e-6)
    assert result["student"]["agreement"] < 1.0
    assert result["student"]["kl_to_teacher"] > 0.0


def test_ratios(result):
    t, s, b = result["teacher"], result["student"], result["baseline"]
    assert result["retention"] == pytest.approx(s["accuracy"] / t["accuracy"])
    assert result["compression"] == pytest.approx(t["params"] / s["params"])
    assert result["compression"] > 5
    assert result["speedup"] == pytest.approx(t["latency_ms_p50"] / s["latency_ms_p50"])
    assert result["baseline_retention"] == pytest.approx(b["accuracy"] / t["accuracy"])
    assert result["gap_closed"] == pytest.approx(
        (s["accuracy"] - b["accuracy"]) / (t["accuracy"] - b["accuracy"])
    )
    assert 0 < result["gap_closed"] < 1


def test_no_gap_closed_when_the_baseline_beats_the_teacher(models, test_data):
    teacher, student, baseline = models
    # roles swapped: the weakest model as teacher, the strongest as hard-label baseline
    out = compare(baseline, student, test_data, baseline=teacher, **FAST)
    assert out["teacher"]["accuracy"] < out["baseline"]["accuracy"]
    assert out["gap_closed"] is None


def test_without_baseline_there_is_no_gap_closed(models, test_data):
    teacher, student, _ = models
    out = compare(teacher, student, test_data, **FAST)
    assert "baseline" not in out and "gap_closed" not in out
    assert out["retention"] is not None


def test_unlabeled_data_gives_no_accuracy_or_retention(models, test_data):
    teacher, student, _ = models
    out = compare(teacher, student, TensorDataset(test_data.inputs), **FAST)
    assert "accuracy" not in out["student"]
    assert out["retention"] is None
    assert out["student"]["agreement"] == pytest.approx(
        compare(teacher, student, test_data, **FAST)["student"]["agreement"]
    )


def test_compare_restores_training_mode(models, test_data):
    teacher, student, _ = models
    student.train()
    try:
        compare(teacher, student, test_data, **FAST)
        assert student.training and not teacher.training
    finally:
        student.eval()


def test_evaluate_models_without_reference(models, test_data):
    teacher, student, _ = models
    out = evaluate_models(
        {"a": teacher, "b": student}, test_data, batch_sizes=(4,), latency_repeats=5
    )
    assert set(out) == {"a", "b"}
    assert "agreement" not in out["a"]
    assert {"latency_ms_p50_b4", "latency_ms_p95_b4"} <= set(out["a"])


def test_compare_without_batch_size_one_is_refused_clearly(models, test_data):
    teacher, student, _ = models
    with pytest.raises(ValueError, match="must include 1"):
        compare(teacher, student, test_data, batch_sizes=(8,), latency_repeats=5)
