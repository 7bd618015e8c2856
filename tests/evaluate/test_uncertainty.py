"""The noise rules: an accuracy comes with its interval, a difference inside its interval is
never reported as a gain or a loss, and "gap closed" is absent (with the reason) then."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from distill.evaluate.compare import compare, gap_closed
from distill.evaluate.uncertainty import (
    accuracy_interval,
    describe_difference,
    paired_difference,
    seeds_difference,
)
from distill.report.formatting import findings
from distill.report.html import render_html
from distill.report.markdown import render_report
from distill.report.runs import runs_table

GAIN_WORDS = ("beats", "trails", "gap closed by distillation:")


def test_the_wilson_interval_covers_the_true_accuracy_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    p, n = 0.92, 2000
    hits = 0
    for _ in range(2000):
        lo, hi = accuracy_interval(int(rng.binomial(n, p)), n)
        hits += lo <= p <= hi
    assert 0.93 <= hits / 2000 <= 0.97
    assert accuracy_interval(50, 100) == pytest.approx((0.4038, 0.5962), abs=1e-3)
    lo, hi = accuracy_interval(100, 100)
    assert hi == 1.0 and 0.96 < lo < 1.0  # never past 100%, never zero width


def test_the_paired_interval_matches_the_spread_of_the_difference():
    rng = np.random.default_rng(1)
    n = 5000
    # two models right on correlated samples: the paired interval is much narrower than the
    # two separate ones, and its width matches the observed spread over resampled test sets
    base = rng.random(n) < 0.9
    a = np.where(rng.random(n) < 0.97, base, ~base)
    b = np.where(rng.random(n) < 0.97, base, ~base)
    diff = paired_difference(a, b)
    resampled = []
    for _ in range(1000):
        idx = rng.integers(0, n, n)
        resampled.append(a[idx].mean() - b[idx].mean())
    assert diff["half_width"] == pytest.approx(1.96 * np.std(resampled), rel=0.15)
    lo, hi = accuracy_interval(int(a.sum()), n)
    assert diff["half_width"] < (hi - lo) / 2


def test_a_difference_inside_the_interval_is_no_measurable_difference():
    a = np.array([True] * 900 + [False] * 100)
    b = a.copy()
    b[:3] = False  # a is right on 3 more samples out of 1,000
    diff = paired_difference(a, b)
    assert diff["difference"] == pytest.approx(0.003)
    assert not diff["measurable"]
    text = describe_difference(diff, "the student", "the baseline")
    assert text.startswith("no measurable difference") and "beats" not in text
    same = paired_difference(a, a)
    assert same["difference"] == 0 and not same["measurable"] and same["half_width"] == 0


def test_a_difference_beyond_the_interval_is_reported_with_it():
    a = np.array([True] * 900 + [False] * 100)
    b = a.copy()
    b[:60] = False
    diff = paired_difference(a, b)
    assert diff["measurable"] and diff["ci95"][0] > 0
    assert "beats" in describe_difference(diff, "the student", "the baseline")
    worse = paired_difference(b, a)
    assert worse["measurable"] and "trails" in describe_difference(worse, "A", "B")


def test_welch_over_seeds():
    diff = seeds_difference([0.930, 0.932, 0.928], [0.919, 0.921, 0.920])
    assert diff["measurable"] and diff["ci95"][0] > 0
    noisy = seeds_difference([0.930, 0.920, 0.925], [0.926, 0.921, 0.929])
    assert not noisy["measurable"]
    with pytest.raises(ValueError, match="two seeds"):
        seeds_difference([0.9], [0.8, 0.85])


def test_gap_closed_needs_both_differences_beyond_noise():
    noise = {"student_vs_baseline": {"measurable": False, "half_width": 0.004},
             "baseline_vs_teacher": {"measurable": True, "half_width": 0.003}}
    value, note = gap_closed(noise, 0.9256, 0.9243, 0.9236)
    assert value is None and "no measurable difference between student and baseline" in note
    real = {"student_vs_baseline": {"measurable": True, "half_width": 0.004},
            "baseline_vs_teacher": {"measurable": True, "half_width": 0.004}}
    value, note = gap_closed(real, 0.94, 0.90, 0.92)
    assert value == pytest.approx(0.5) and note is None
    value, note = gap_closed(real, 0.90, 0.91, 0.92)
    assert value is None and "no gap" in note


class Table(nn.Module):
    """A 'model' whose logits for sample i are row i of a fixed table (input: the index)."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.register_buffer("logits", logits)
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits[x.long().view(-1)] * self.scale


def _right_on(labels: torch.Tensor, right: np.ndarray, classes: int = 3) -> Table:
    predicted = torch.where(torch.from_numpy(right), labels, (labels + 1) % classes)
    return Table(nn.functional.one_hot(predicted, classes).float() * 5)


def _run(teacher_right, student_right, baseline_right):
    n = len(teacher_right)
    labels = torch.arange(n) % 3
    data = TensorDataset(torch.arange(n).float(), labels)
    return compare(_right_on(labels, teacher_right), _right_on(labels, student_right), data,
                   baseline=_right_on(labels, baseline_right), latency_repeats=2,
                   batch_sizes=(1, 8), diagnostics=False)


def test_a_run_within_noise_reports_no_gain_anywhere(tmp_path):
    rng = np.random.default_rng(2)
    n = 2000
    teacher = rng.random(n) < 0.93
    baseline = np.where(rng.random(n) < 0.9, teacher, rng.random(n) < 0.9)
    student = baseline.copy()
    flip = np.flatnonzero(~student)[:2]  # two samples more right: inside the noise
    student[flip] = True
    metrics = _run(teacher, student, baseline)
    assert metrics["student"]["accuracy"] > metrics["baseline"]["accuracy"]
    assert metrics["gap_closed"] is None
    assert "no measurable difference" in metrics["gap_closed_note"]
    diff = metrics["differences"]["student_vs_baseline"]
    assert not diff["measurable"] and diff["difference"] == pytest.approx(2 / n)
    lo, hi = metrics["student"]["accuracy_ci95"]
    assert lo < metrics["student"]["accuracy"] < hi
    texts = {"findings": " ".join(findings(metrics)),
             "report.md": render_report(metrics, "", {}),
             "report.html": render_html(metrics, ""),
             "compare": _compare_table(tmp_path, metrics)}
    for where, text in texts.items():
        lowered = text.lower()
        assert "no measurable difference" in lowered, where
        assert "the student beats the baseline" not in lowered, where
        assert "gap closed by distillation:" not in lowered, where


def test_a_run_beyond_noise_reports_the_gain_and_gap_closed(tmp_path):
    rng = np.random.default_rng(3)
    n = 2000
    teacher = rng.random(n) < 0.95
    baseline = rng.random(n) < 0.80
    student = np.where(rng.random(n) < 0.5, teacher, baseline)
    metrics = _run(teacher, student, baseline)
    diff = metrics["differences"]["student_vs_baseline"]
    assert diff["measurable"] and diff["ci95"][0] > 0
    assert metrics["gap_closed"] == pytest.approx(
        (metrics["student"]["accuracy"] - metrics["baseline"]["accuracy"])
        / (metrics["teacher"]["accuracy"] - metrics["baseline"]["accuracy"]))
    assert "gap_closed_note" not in metrics
    assert any("The student beats the baseline" in line for line in findings(metrics))
    assert "pts (±" in _compare_table(tmp_path, metrics)


def _compare_table(tmp_path, metrics) -> str:
    import json

    folder = tmp_path / f"run-{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return runs_table([folder])


def test_compare_pools_seeds_of_one_recipe(tmp_path):
    import json

    folders = []
    for seed, (s, b) in enumerate([(0.930, 0.919), (0.932, 0.921), (0.928, 0.920)]):
        folder = tmp_path / f"seed{seed}"
        folder.mkdir()
        recipe = {"name": "x", "train": {"seed": seed, "epochs": 3}, "data": {"dataset": "d"}}
        (folder / "metrics.json").write_text(json.dumps({
            "name": "x", "recipe": recipe, "student": {"accuracy": s, "params": 1},
            "baseline": {"accuracy": b}, "teacher": {"accuracy": 0.94}}))
        folders.append(folder)
    table = runs_table(folders)
    assert "x, 3 seeds: student 93.00 ± 0.20%" in table
    assert "student beats baseline" in table and "over seeds" in table


def test_the_plain_summary_names_the_cost_only_when_it_is_measurable():
    from distill.report.formatting import plain_summary

    metrics = {"retention": 0.9912, "speedup": 6.1, "compression": 10.7,
               "differences": {"student_vs_teacher": {"difference": -0.0081, "measurable": True,
                                                      "half_width": 0.0038}}}
    text = plain_summary(metrics)
    assert "10.70× fewer parameters" in text and "6.10× faster" in text
    assert "0.81 points of accuracy" in text
    metrics["differences"]["student_vs_teacher"]["measurable"] = False
    assert "no measurable loss of accuracy" in plain_summary(metrics)


def test_the_plain_summary_of_a_language_model_speaks_of_perplexity():
    from distill.report.formatting import plain_summary

    metrics = {"task": "causal-lm", "retention": 1.0201, "speedup": 2.66, "compression": 1.37,
               "teacher": {"perplexity": 3258.65}, "student": {"perplexity": 3194.48}}
    text = plain_summary(metrics)
    assert "perplexity is 3194.48 against the teacher's 3258.65" in text
    assert "accuracy" not in text and "-2.01%" not in text
