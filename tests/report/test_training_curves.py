"""The report's training plot: a one-epoch language-model recovery is a curve along its steps
and a labelled perplexity, not two lone dots."""

from __future__ import annotations

import pytest

pytest.importorskip("matplotlib")

from distill.report.plots import training_curves_figure  # noqa: E402


def _epoch(epoch: int, trace: bool) -> dict:
    record = {"epoch": epoch, "train_loss": 1.0, "eval_perplexity": 50.28}
    if trace:
        record["loss_trace"] = {"steps": [10, 20, 30, 37], "loss": [3.0, 2.0, 1.5, 1.4],
                                "of": 37}
    return record


def test_a_traced_epoch_is_drawn_along_its_steps_and_its_perplexity_labelled():
    fig = training_curves_figure({"student": [_epoch(1, trace=True)],
                                  "baseline": [_epoch(1, trace=False)]})
    loss_ax, eval_ax = fig.axes
    student, baseline = loss_ax.lines
    assert list(student.get_xdata()) == pytest.approx([10 / 37, 20 / 37, 30 / 37, 1.0])
    assert list(student.get_ydata()) == [3.0, 2.0, 1.5, 1.4]
    assert list(baseline.get_xdata()) == [1] and baseline.get_marker() == "o"
    assert eval_ax.get_yscale() == "log" and eval_ax.get_title().startswith("held-out perplexity")
    assert [t.get_text() for t in eval_ax.texts] == ["50.28", "50.28"]
    assert list(eval_ax.get_xticks()) == [1]


def test_later_epochs_continue_the_trace_after_the_first():
    fig = training_curves_figure({"student": [_epoch(1, trace=True), _epoch(2, trace=True)]})
    line = fig.axes[0].lines[0]
    assert line.get_xdata()[4] == pytest.approx(1 + 10 / 37)
    assert not fig.axes[1].texts  # two epochs: a line to read, no labels
