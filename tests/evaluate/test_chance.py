"""A teacher near chance is called out: in metrics, both reports and the terminal (issue 19)."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

import distill
from distill import build_mlp, compare
from distill.cli import main
from distill.data import load_dataset
from distill.evaluate.chance import ChanceCheck, chance_accuracy, check_chance
from distill.report.html import render_html
from distill.report.markdown import render_report

FAST = dict(batch_sizes=(1, 8), latency_repeats=3)


def _trained_mlp(seed: int = 0):
    """An MLP on digits, full-batch Adam: ~95% on the test split in about a second."""
    train = load_dataset("digits", "train")
    torch.manual_seed(seed)
    model = build_mlp((1, 8, 8), 10, hidden=(64,))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(80):
        optimizer.zero_grad()
        F.cross_entropy(model(train.inputs), train.labels).backward()
        optimizer.step()
    return model.eval()


def _permuted(model):
    """The same model answering with its classes in another order (a wrong class mapping)."""
    permuted = build_mlp((1, 8, 8), 10, hidden=(64,))
    permuted.load_state_dict(model.state_dict())
    last = [m for m in permuted.modules() if isinstance(m, torch.nn.Linear)][-1]
    order = torch.roll(torch.arange(10), 1)
    with torch.no_grad():
        last.weight.copy_(last.weight[order])
        last.bias.copy_(last.bias[order])
    return permuted.eval()


@pytest.fixture(scope="module")
def digits_test():
    return load_dataset("digits", "test")


@pytest.fixture(scope="module")
def good():
    return _trained_mlp(0)


@pytest.fixture(scope="module")
def student():
    return _trained_mlp(1)


@pytest.fixture(scope="module")
def random_teacher():
    torch.manual_seed(3)
    return distill.build_cnn((1, 8, 8), 10, channels=(4,)).eval()


def test_chance_is_the_most_frequent_class_not_one_over_classes():
    labels = torch.tensor([0] * 95 + [1] * 5 + [-100] * 7)  # unlabelled samples left out
    assert chance_accuracy(labels) == pytest.approx(0.95)
    assert chance_accuracy(torch.tensor([-1, -1])) is None
    # 96% where 95% is chance: not clearly above it; with two balanced classes, clearly
    assert ChanceCheck(0.96, (0.90, 0.99), 0.95, 100).near_chance
    assert not ChanceCheck(0.96, (0.90, 0.99), 0.5, 100).near_chance
    # ten balanced classes: the interval must clear 10% + 0.05 * 90% = 14.5%
    assert ChanceCheck(0.16, (0.14, 0.18), 0.1, 1000).near_chance
    assert not ChanceCheck(0.17, (0.15, 0.19), 0.1, 1000).near_chance


def test_check_chance_counts_only_labelled_samples():
    logits = torch.eye(3)[[0, 1, 2, 0]]
    check = check_chance(logits, torch.tensor([0, 1, 2, -100]))
    assert check.accuracy == 1.0 and check.samples == 3
    assert check_chance(logits, None) is None
    assert check_chance(torch.zeros(4, 3, 5), torch.zeros(4, 3, dtype=torch.long)) is None


@pytest.mark.parametrize("which", ["random init", "permuted labels"])
def test_a_teacher_near_chance_is_flagged(which, random_teacher, good, student, digits_test):
    teacher = random_teacher if which == "random init" else _permuted(good)
    result = compare(teacher, student, digits_test, baseline=student, diagnostics=False, **FAST)
    assert result["teacher_near_chance"] is True
    counts = torch.bincount(digits_test.labels)
    assert result["chance_accuracy"] == pytest.approx(float(counts.max()) / len(digits_test))
    (warning,) = result["warnings"]
    assert f"{100 * result['teacher']['accuracy']:.2f}%" in warning
    assert f"{100 * result['chance_accuracy']:.2f}%" in warning
    assert "preprocessed differently" in warning and "[0, 1]" in warning
    assert "class mapping" in warning and "other classes" in warning
    # the ratios stay (nothing renamed; None only where the teacher scored 0), said meaningless
    assert {"retention", "baseline_retention", "gap_closed"} <= set(result)
    assert (result["retention"] is not None) == (result["teacher"]["accuracy"] > 0)
    assert result["retention_note"].startswith("meaningless")
    assert "baseline retention and gap closed" in result["retention_note"]
    json.dumps(result)  # metrics.json can hold it


def test_a_good_teacher_is_not_flagged(good, student, digits_test):
    result = compare(good, student, digits_test, diagnostics=False, **FAST)
    assert result["teacher"]["accuracy"] > 0.9
    assert result["teacher_near_chance"] is False and result["warnings"] == []
    assert "retention_note" not in result and 0 < result["chance_accuracy"] < 0.2


def test_reports_show_the_warning_first(random_teacher, student, digits_test):
    metrics = compare(random_teacher, student, digits_test, **FAST)
    warning = metrics["warnings"][0]
    markdown = render_report(metrics, 'name = "x"', {})
    assert f"**WARNING:** {warning}" in markdown
    assert markdown.index("WARNING") < markdown.index("## Summary")
    assert "meaningless" in markdown.split("**Retention**")[1].splitlines()[0]
    page = render_html(metrics, 'name = "x"')
    assert 'class="warning"' in page and "WARNING:" in page
    assert page.index('class="warning"') < page.index('<section id="summary">')
    assert "(meaningless)</span>" in page  # the retention card


def test_reports_without_warnings_show_no_box(good, student, digits_test):
    metrics = compare(good, student, digits_test, diagnostics=False, **FAST)
    assert "WARNING" not in render_report(metrics, "", {})
    assert 'class="warning"' not in render_html(metrics, "")


def test_cli_eval_warns_on_stderr(tmp_path, capsys, good, student):
    distill.save(_permuted(good), tmp_path / "teacher")
    distill.save(good, tmp_path / "good")
    distill.save(student, tmp_path / "student")
    args = ["eval", str(tmp_path / "student"), "--data", "digits", "--repeats", "3"]
    assert main([*args, "--teacher", str(tmp_path / "teacher")]) == 0
    out, err = capsys.readouterr()
    assert err.startswith("WARNING: The teacher scores") and "class mapping" in err
    assert out.startswith("WARNING: The teacher scores")  # first in the summary too
    assert "retention:" in out and "meaningless" in out.split("retention:")[1].splitlines()[0]
    assert main([*args, "--teacher", str(tmp_path / "teacher"), "--json"]) == 0
    out, err = capsys.readouterr()
    result = json.loads(out)  # stdout stays JSON; the warning goes to stderr
    assert result["teacher_near_chance"] and result["warnings"][0] in err
    assert main([*args, "--teacher", str(tmp_path / "good")]) == 0
    out, err = capsys.readouterr()
    assert "WARNING" not in err and "WARNING" not in out


def test_cli_eval_of_one_model_near_chance_warns(tmp_path, capsys, random_teacher):
    distill.save(random_teacher, tmp_path / "m")
    assert main(["eval", str(tmp_path / "m"), "--data", "digits", "--repeats", "3"]) == 0
    out, err = capsys.readouterr()
    assert err.startswith(f"WARNING: The model {tmp_path / 'm'} scores")
    assert "says nothing" in err
