"""Per-class, confusion, calibration and inherited-error numbers on hand-made predictions."""

from __future__ import annotations

import pytest
import torch

from distill.evaluate.diagnostics import diagnose
from distill.report.figures import pareto_front


def _logits(predicted: list[int], classes: int = 3, confidence: float = 4.0) -> torch.Tensor:
    out = torch.zeros(len(predicted), classes)
    out[torch.arange(len(predicted)), torch.tensor(predicted)] = confidence
    return out


def test_a_class_the_student_lost_is_flagged_and_copied_mistakes_are_counted():
    # 3 classes x 40 samples; the teacher errs on 4 samples of class 0 (says 1)
    labels = torch.tensor([0] * 40 + [1] * 40 + [2] * 40)
    teacher = labels.clone()
    teacher[:4] = 1
    student = teacher.clone()  # repeats the teacher's 4 mistakes...
    student[80:100] = 0  # ...and loses half of class 2
    d = diagnose({"teacher": _logits(teacher.tolist()), "student": _logits(student.tolist())},
                 labels, class_names=("a", "b", "c"))
    assert d["class_names"] == ["a", "b", "c"] and d["support"] == [40, 40, 40]
    assert d["per_class_accuracy"]["teacher"] == [0.9, 1.0, 1.0]
    assert d["per_class_accuracy"]["student"] == [0.9, 1.0, 0.5]
    assert [f["class"] for f in d["flags"]["flagged"]] == [2]
    assert d["flags"]["mean_error_growth"] == pytest.approx(0.5 / 3)
    assert d["confusion"]["student"][2] == [20, 0, 20]
    assert sum(map(sum, d["confusion"]["teacher"])) == 120
    inherited = d["inherited"]
    assert inherited["student_errors"] == 24 and inherited["teacher_errors"] == 4
    assert inherited["same_wrong_answer"] == 4 and inherited["new_errors"] == 20
    assert inherited["share_of_teacher_errors_repeated"] == 1.0
    assert inherited["same_wrong_answer_per_class"] == [4, 0, 0]
    assert sum(d["calibration"]["student"]["count"]) == 120


def test_noise_within_two_standard_errors_is_not_flagged_and_unlabeled_rows_are_ignored():
    labels = torch.tensor([0] * 20 + [1] * 20 + [-100] * 5)
    teacher = [0] * 20 + [1] * 20 + [0] * 5
    student = [0] * 19 + [1] + [1] * 20 + [1] * 5  # one sample of 20 lost: noise
    d = diagnose({"teacher": _logits(teacher, 2), "student": _logits(student, 2)}, labels)
    assert d["flags"]["flagged"] == []
    assert d["support"] == [20, 20] and d["class_names"] == ["0", "1"]
    with pytest.raises(ValueError, match="'teacher'"):
        diagnose({"student": _logits(student, 2)}, labels)


def test_the_pareto_front_keeps_only_points_nothing_beats_on_both_axes():
    # (latency, accuracy)
    points = [(1.0, 0.80), (2.0, 0.90), (2.5, 0.85), (4.0, 0.95), (3.0, 0.90)]
    assert pareto_front(points) == [0, 1, 3]
