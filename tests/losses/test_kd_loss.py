"""KDLoss and HardLabelLoss checked against formulas written out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import distill
from distill import HardLabelLoss, KDLoss

# ---------------------------------------------------------------- reference implementation


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def reference_soft(student, teacher, temperature, keep=None) -> float:
    """T² · mean over positions of sum_c p_t (log p_t - log p_s), all in float64."""
    s = np.asarray(student, dtype=np.float64)
    t = np.asarray(teacher, dtype=np.float64)
    classes = s.shape[-1]
    log_ps = _log_softmax(s.reshape(-1, classes) / temperature)
    log_pt = _log_softmax(t.reshape(-1, classes) / temperature)
    per_position = (np.exp(log_pt) * (log_pt - log_ps)).sum(axis=-1)
    if keep is not None:
        per_position = per_position[np.asarray(keep).reshape(-1).astype(bool)]
    return float(per_position.mean() * temperature**2)


def reference_ce(student, labels, keep=None) -> float:
    """Mean of -log softmax(student)[label] over positions whose label is not -100."""
    s = np.asarray(student, dtype=np.float64)
    y = np.asarray(labels).reshape(-1)
    log_p = _log_softmax(s.reshape(-1, s.shape[-1]))
    valid = y != -100
    if keep is not None:
        valid &= np.asarray(keep).reshape(-1).astype(bool)
    if not valid.any():
        return 0.0
    return float(-log_p[valid, y[valid]].mean())


def reference_kd(student, teacher, labels, temperature, alpha, keep=None) -> float:
    soft = reference_soft(student, teacher, temperature, keep)
    return alpha * soft + (1 - alpha) * reference_ce(student, labels, keep)


def _logits(*shape, seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g) * scale


def _labels(*shape, classes, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, classes, shape, generator=g)


# ---------------------------------------------------------------- value


@pytest.mark.parametrize("shape", [(8, 5), (3, 4, 7)], ids=["BC", "BSC"])
@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0, 10.0])
@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.9, 1.0])
def test_kd_loss_matches_hand_formula(shape, temperature, alpha):
    student = _logits(*shape, seed=0)
    teacher = _logits(*shape, seed=1)
    labels = _labels(*shape[:-1], classes=shape[-1])
    loss = KDLoss(temperature=temperature, alpha=alpha)(student, teacher, labels)
    expected = reference_kd(student.numpy(), teacher.numpy(), labels.numpy(), temperature, alpha)
    assert loss.dim() == 0
    assert loss.item() == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_soft_term_is_zero_for_identical_logits_and_positive_otherwise():
    z = _logits(6, 4)
    loss = KDLoss(temperature=3.0, alpha=1.0)
    assert loss(z, z.clone()).item() == pytest.approx(0.0, abs=1e-6)
    assert loss(z, _logits(6, 4, seed=5)).item() > 1e-3


def test_default_constructor_values_follow_the_formula():
    student, teacher = _logits(5, 3), _logits(5, 3, seed=2)
    labels = _labels(5, classes=3)
    loss = KDLoss()
    assert (loss.temperature, loss.alpha) == (4.0, 0.9)
    expected = reference_kd(student.numpy(), teacher.numpy(), labels.numpy(), 4.0, 0.9)
    assert loss(student, teacher, labels).item() == pytest.approx(expected, rel=1e-5)


def test_kd_loss_is_computed_in_float32_for_half_inputs():
    student, teacher = _logits(4, 6), _logits(4, 6, seed=3)
    labels = _labels(4, classes=6)
    loss = KDLoss(2.0, 0.5)
    half = loss(student.bfloat16(), teacher.bfloat16(), labels)
    assert half.dtype == torch.float32
    expected = reference_kd(
        student.bfloat16().float().numpy(),
        teacher.bfloat16().float().numpy(),
        labels.numpy(),
        2.0,
        0.5,
    )
    assert half.item() == pytest.approx(expected, rel=1e-4)


# ---------------------------------------------------------------- the T² factor


def _grad_norm(loss_fn, temperature, scale_by_t2=True):
    student = _logits(32, 10, seed=11, scale=2.0).requires_grad_(True)
    teacher = _logits(32, 10, seed=12, scale=2.0)
    value = loss_fn(student, teacher)
    if not scale_by_t2:
        value = value / temperature**2
    (grad,) = torch.autograd.grad(value, student)
    return grad.norm().item()


TEMPERATURES = (1.0, 2.0, 4.0, 8.0, 16.0)


def test_t_squared_keeps_gradient_scale_across_temperatures():
    norms = [_grad_norm(KDLoss(temperature=t, alpha=1.0), t) for t in TEMPERATURES]
    assert all(n > 0 for n in norms)
    assert max(norms) / min(norms) < 3.0


def test_without_t_squared_gradients_shrink_by_orders_of_magnitude():
    norms = [
        _grad_norm(KDLoss(temperature=t, alpha=1.0), t, scale_by_t2=False) for t in TEMPERATURES
    ]
    # strictly decreasing with T, and by more than two orders of magnitude from T=1 to T=16
    assert all(a > b for a, b in zip(norms, norms[1:], strict=False))
    assert norms[0] / norms[-1] > 100.0


# ---------------------------------------------------------------- alpha and labels


def test_alpha_one_is_the_soft_term_alone():
    student, teacher = _logits(7, 5), _logits(7, 5, seed=4)
    labels = _labels(7, classes=5)
    loss = KDLoss(temperature=3.0, alpha=1.0)
    assert torch.equal(loss(student, teacher, labels), loss.soft_term(student, teacher))
    assert loss(student, teacher, labels).item() == pytest.approx(
        reference_soft(student.numpy(), teacher.numpy(), 3.0), rel=1e-5
    )


@pytest.mark.parametrize("shape", [(7, 5), (2, 3, 5)])
def test_alpha_zero_is_plain_cross_entropy_exactly(shape):
    student, teacher = _logits(*shape), _logits(*shape, seed=4)
    labels = _labels(*shape[:-1], classes=shape[-1])
    got = KDLoss(temperature=5.0, alpha=0.0)(student, teacher, labels)
    expected = F.cross_entropy(student.reshape(-1, shape[-1]), labels.reshape(-1))
    assert torch.equal(got, expected)


@pytest.mark.parametrize("alpha", [0.0, 0.25, 1.0])
def test_no_labels_gives_unweighted_soft_term_whatever_alpha(alpha):
    student, teacher = _logits(6, 4), _logits(6, 4, seed=8)
    got = KDLoss(temperature=2.0, alpha=alpha)(student, teacher, None)
    assert got.item() == pytest.approx(
        reference_soft(student.numpy(), teacher.numpy(), 2.0), rel=1e-5
    )


def test_ignored_labels_are_left_out_of_ce_but_kept_in_soft_term():
    student, teacher = _logits(8, 5), _logits(8, 5, seed=6)
    labels = _labels(8, classes=5)
    labels[[1, 4, 5]] = -100
    temperature, alpha = 2.0, 0.4
    loss = KDLoss(temperature, alpha)
    got = loss(student, teacher, labels)

    ce = F.cross_entropy(student, labels, ignore_index=-100)
    soft_all_rows = reference_soft(student.numpy(), teacher.numpy(), temperature)
    assert got.item() == pytest.approx(alpha * soft_all_rows + (1 - alpha) * ce.item(), rel=1e-5)

    # the unlabeled rows really do count in the soft term: dropping them changes the value
    soft_labeled_rows = reference_soft(
        student.numpy(), teacher.numpy(), temperature, keep=(labels != -100).numpy()
    )
    assert abs(soft_all_rows - soft_labeled_rows) > 1e-3
    assert got.item() != pytest.approx(
        alpha * soft_labeled_rows + (1 - alpha) * ce.item(), rel=1e-4
    )


def test_all_ignored_batch_gives_finite_alpha_times_soft():
    student = _logits(5, 3).requires_grad_(True)
    teacher = _logits(5, 3, seed=9)
    labels = torch.full((5,), -100)
    loss = KDLoss(temperature=4.0, alpha=0.3)
    got = loss(student, teacher, labels)
    assert torch.isfinite(got)
    expected = 0.3 * reference_soft(student.detach().numpy(), teacher.numpy(), 4.0)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    got.backward()  # still differentiable, with finite gradients
    assert torch.isfinite(student.grad).all()
    assert student.grad.abs().sum() > 0


def test_mask_drops_positions_from_both_terms():
    b, s, c = 3, 5, 6
    student, teacher = _logits(b, s, c), _logits(b, s, c, seed=13)
    labels = _labels(b, s, classes=c)
    mask = torch.ones(b, s, dtype=torch.bool)
    mask[0, 3:] = False
    mask[2, 1] = False
    temperature, alpha = 3.0, 0.6
    got = KDLoss(temperature, alpha)(student, teacher, labels, mask=mask)
    expected = reference_kd(
        student.numpy(), teacher.numpy(), labels.numpy(), temperature, alpha, keep=mask.numpy()
    )
    assert got.item() == pytest.approx(expected, rel=1e-5)

    # same as running the loss on the kept positions only
    kept = KDLoss(temperature, alpha)(student[mask], teacher[mask], labels[mask])
    assert got.item() == pytest.approx(kept.item(), rel=1e-5)

    # garbage at masked positions does not matter
    noisy_student = student.clone()
    noisy_student[~mask] = 1e3 * torch.randn(int((~mask).sum()), c)
    noisy_labels = labels.clone()
    noisy_labels[~mask] = 0
    again = KDLoss(temperature, alpha)(noisy_student, teacher, noisy_labels, mask=mask)
    assert again.item() == pytest.approx(got.item(), rel=1e-5)


def test_mask_without_labels_masks_the_soft_term():
    student, teacher = _logits(4, 6, 3), _logits(4, 6, 3, seed=14)
    mask = torch.rand(4, 6, generator=torch.Generator().manual_seed(0)) > 0.4
    got = KDLoss(2.0, 0.5)(student, teacher, mask=mask)
    expected = reference_soft(student.numpy(), teacher.numpy(), 2.0, keep=mask.numpy())
    assert got.item() == pytest.approx(expected, rel=1e-5)


# ---------------------------------------------------------------- errors


def test_teacher_student_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError) as info:
        KDLoss()(torch.zeros(4, 10), torch.zeros(5, 10))
    message = str(info.value)
    assert "(4, 10)" in message and "(5, 10)" in message


def test_class_count_mismatch_names_the_class_counts():
    with pytest.raises(ValueError) as info:
        KDLoss()(torch.zeros(4, 3), torch.zeros(4, 10))
    message = str(info.value)
    assert "(4, 3)" in message and "(4, 10)" in message
    assert "10 classes" in message and "student 3" in message


def test_missing_teacher_logits_is_refused():
    with pytest.raises(ValueError, match="HardLabelLoss"):
        KDLoss()(torch.zeros(4, 3), None)


def test_student_logits_without_class_dimension_are_refused():
    with pytest.raises(ValueError, match="class dimension"):
        KDLoss()(torch.zeros(4), torch.zeros(4))


def test_labels_shape_mismatch():
    with pytest.raises(ValueError) as info:
        KDLoss()(torch.zeros(4, 3), torch.zeros(4, 3), torch.zeros(5, dtype=torch.long))
    message = str(info.value)
    assert "(5,)" in message and "(4,)" in message


def test_float_labels_are_refused():
    with pytest.raises(ValueError, match="integer"):
        KDLoss()(torch.zeros(4, 3), torch.zeros(4, 3), torch.zeros(4))


@pytest.mark.parametrize("bad", [3, 7, -1])
def test_out_of_range_label_names_the_value(bad):
    labels = torch.tensor([0, 1, bad, 2])
    with pytest.raises(ValueError) as info:
        KDLoss()(torch.zeros(4, 3), torch.zeros(4, 3), labels)
    message = str(info.value)
    assert f"label {bad}" in message and "3 classes" in message


@pytest.mark.parametrize("temperature", [0.0, -1.0, math.nan])
def test_invalid_temperature(temperature):
    with pytest.raises(ValueError, match="temperature"):
        KDLoss(temperature=temperature)


@pytest.mark.parametrize("alpha", [-0.1, 1.5, math.nan])
def test_invalid_alpha(alpha):
    with pytest.raises(ValueError, match="alpha"):
        KDLoss(alpha=alpha)


def test_kd_loss_needs_teacher_and_is_exported():
    assert KDLoss.needs_teacher is True
    assert distill.KDLoss is KDLoss
    assert isinstance(KDLoss(), distill.DistillationLoss)


# ---------------------------------------------------------------- HardLabelLoss


@pytest.mark.parametrize("shape", [(9, 4), (2, 5, 4)])
def test_hard_label_loss_equals_cross_entropy(shape):
    logits = _logits(*shape)
    labels = _labels(*shape[:-1], classes=shape[-1])
    labels.view(-1)[0] = -100
    got = HardLabelLoss()(logits, None, labels)
    expected = F.cross_entropy(logits.reshape(-1, shape[-1]), labels.reshape(-1))
    assert torch.allclose(got, expected)
    assert got.item() == pytest.approx(reference_ce(logits.numpy(), labels.numpy()), rel=1e-5)


def test_hard_label_loss_ignores_teacher_logits():
    logits, labels = _logits(6, 3), _labels(6, classes=3)
    loss = HardLabelLoss()
    assert torch.equal(loss(logits, _logits(6, 3, seed=99), labels), loss(logits, None, labels))


def test_hard_label_loss_label_smoothing():
    logits, labels = _logits(6, 3), _labels(6, classes=3)
    got = HardLabelLoss(label_smoothing=0.1)(logits, None, labels)
    assert torch.allclose(got, F.cross_entropy(logits, labels, label_smoothing=0.1))
    assert not torch.allclose(got, F.cross_entropy(logits, labels))


def test_hard_label_loss_without_labels_explains():
    with pytest.raises(ValueError) as info:
        HardLabelLoss()(torch.zeros(4, 3), None, None)
    message = str(info.value)
    assert "needs labels" in message and "KDLoss" in message


def test_hard_label_loss_does_not_need_teacher():
    assert HardLabelLoss.needs_teacher is False
    assert HardLabelLoss().needs_teacher is False


def test_no_gradient_flows_into_the_teacher_logits():
    student = torch.randn(4, 5, requires_grad=True)
    teacher = torch.randn(4, 5, requires_grad=True)
    KDLoss(2.0, 0.5)(student, teacher, torch.tensor([0, 1, 2, 3])).backward()
    assert student.grad is not None and teacher.grad is None
