"""Quality metrics on hand-built logits whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from distill.evaluate import (
    accuracy,
    agreement,
    classification_metrics,
    expected_calibration_error,
    kl_to_teacher,
)
from distill.evaluate.metrics import negative_log_likelihood


def one_hot_logits(predicted, classes=4, margin=5.0):
    logits = torch.zeros(len(predicted), classes)
    logits[torch.arange(len(predicted)), torch.tensor(predicted)] = margin
    return logits


def confident(p: float, predicted: int) -> list[float]:
    """Two-class logits whose softmax gives ``p`` to ``predicted`` (p > 0.5)."""
    row = [math.log(1 - p), math.log(1 - p)]
    row[predicted] = math.log(p)
    return row


# ---------------------------------------------------------------- accuracy


def test_accuracy_known_value():
    logits = one_hot_logits([0, 1, 2, 3, 0])
    labels = torch.tensor([0, 1, 0, 3, 2])
    assert accuracy(logits, labels) == pytest.approx(3 / 5)


def test_accuracy_ignores_no_label_positions():
    logits = one_hot_logits([0, 1, 2, 3, 0])
    labels = torch.tensor([0, -100, 0, 3, -100])
    assert accuracy(logits, labels) == pytest.approx(2 / 3)


def test_accuracy_over_sequences():
    logits = one_hot_logits([0, 1, 2, 3, 0, 1]).reshape(2, 3, 4)
    labels = torch.tensor([[0, 1, 1], [-100, 0, 0]])
    assert accuracy(logits, labels) == pytest.approx(3 / 5)


def test_accuracy_without_any_label_is_nan():
    assert math.isnan(accuracy(one_hot_logits([0, 1]), torch.tensor([-100, -100])))


def test_nll_is_cross_entropy_over_labeled_positions():
    logits = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 2, -100, 1, 1, -100])
    keep = labels != -100
    expected = F.cross_entropy(logits[keep], labels[keep]).item()
    assert negative_log_likelihood(logits, labels) == pytest.approx(expected, rel=1e-6)


# ---------------------------------------------------------------- agreement and KL


def test_agreement_known_value():
    student = one_hot_logits([0, 1, 2, 3])
    teacher = one_hot_logits([0, 1, 3, 2])
    assert agreement(student, teacher) == pytest.approx(0.5)
    assert agreement(teacher, teacher) == 1.0
    assert agreement(one_hot_logits([1, 1]), one_hot_logits([2, 2])) == 0.0


def test_kl_zero_for_identical_logits_and_positive_otherwise():
    g = torch.Generator().manual_seed(1)
    teacher = torch.randn(10, 5, generator=g)
    assert kl_to_teacher(teacher, teacher.clone()) == pytest.approx(0.0, abs=1e-6)
    # a constant shift does not change the distribution
    assert kl_to_teacher(teacher + 3.0, teacher) == pytest.approx(0.0, abs=1e-5)
    assert kl_to_teacher(torch.randn(10, 5, generator=g), teacher) > 0.01


def test_kl_matches_hand_formula_and_direction():
    g = torch.Generator().manual_seed(2)
    student, teacher = torch.randn(7, 4, generator=g) * 2, torch.randn(7, 4, generator=g) * 2

    def softmax(z):
        e = np.exp(z - z.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    p_t = softmax(teacher.double().numpy())
    p_s = softmax(student.double().numpy())
    expected = float((p_t * np.log(p_t / p_s)).sum(-1).mean())
    reverse = float((p_s * np.log(p_s / p_t)).sum(-1).mean())
    assert kl_to_teacher(student, teacher) == pytest.approx(expected, rel=1e-5)
    assert abs(expected - reverse) > 1e-3  # so the direction KL(teacher || student) is tested


# ---------------------------------------------------------------- calibration


def test_ece_zero_when_perfectly_calibrated():
    # 4 samples at confidence 0.75 of which 3 are right, 20 at 0.95 of which 19 are right
    logits = torch.tensor([confident(0.75, 0)] * 4 + [confident(0.95, 1)] * 20)
    labels = torch.tensor([0, 0, 0, 1] + [1] * 19 + [0])
    assert expected_calibration_error(logits, labels) == pytest.approx(0.0, abs=1e-6)


def test_ece_hand_computed_value():
    # bin around 0.9: one right, one wrong -> |0.5 - 0.9| = 0.4, weight 1/2
    # bin around 0.7: both right -> |1.0 - 0.7| = 0.3, weight 1/2
    logits = torch.tensor(
        [confident(0.9, 0), confident(0.9, 0), confident(0.7, 1), confident(0.7, 0)]
    )
    labels = torch.tensor([0, 1, 1, 0])
    assert expected_calibration_error(logits, labels) == pytest.approx(0.35, abs=1e-5)
    # one bin containing everything averages over- and under-confidence first
    assert expected_calibration_error(logits, labels, bins=1) == pytest.approx(
        abs(0.75 - 0.8), abs=1e-5
    )


def test_ece_ignores_unlabeled_positions():
    logits = torch.tensor([confident(0.75, 0)] * 4 + [confident(0.99, 1)] * 3)
    labels = torch.tensor([0, 0, 0, 1, -100, -100, -100])
    assert expected_calibration_error(logits, labels) == pytest.approx(0.0, abs=1e-6)
    assert math.isnan(expected_calibration_error(logits[:2], torch.tensor([-100, -100])))


def test_overconfident_wrong_model_has_large_ece():
    logits = one_hot_logits([0] * 10, classes=3, margin=20.0)
    labels = torch.tensor([1] * 10)
    assert expected_calibration_error(logits, labels) == pytest.approx(1.0, abs=1e-4)


# ---------------------------------------------------------------- all together


def test_classification_metrics_keys_and_values():
    logits = one_hot_logits([0, 1, 2, 3])
    teacher = one_hot_logits([0, 1, 2, 2])
    labels = torch.tensor([0, 1, 3, 3])
    out = classification_metrics(logits, labels, teacher)
    assert set(out) == {"accuracy", "nll", "ece", "agreement", "kl_to_teacher"}
    assert out["accuracy"] == pytest.approx(0.75)
    assert out["agreement"] == pytest.approx(0.75)
    assert out["kl_to_teacher"] > 0
    assert set(classification_metrics(logits, None, teacher)) == {"agreement", "kl_to_teacher"}
    assert set(classification_metrics(logits, labels)) == {"accuracy", "nll", "ece"}


def test_classification_metrics_refuses_mismatched_teacher():
    with pytest.raises(ValueError, match=r"\(4, 3\).*\(4, 4\)"):
        classification_metrics(one_hot_logits([0, 1, 2, 3]), None, torch.zeros(4, 3))
