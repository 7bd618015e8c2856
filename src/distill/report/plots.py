"""PNG plots for run reports: where each model sits on accuracy vs latency, and how it trained."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distill import atomic

COLORS = {"teacher": "#1f4e79", "baseline": "#9e9e9e", "student": "#d95f02"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    atomic.write_with(path, lambda p: fig.savefig(p, format="png", dpi=120, bbox_inches="tight"))


def accuracy_vs_latency(metrics: dict[str, Any], path: str | Path) -> Path:
    """Each model as a point: batch-1 p50 latency (log scale) against test accuracy."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in ("teacher", "baseline", "student"):
        entry = metrics.get(name)
        if not entry or "accuracy" not in entry:
            continue
        x, y = entry["latency_ms_p50"], 100 * entry["accuracy"]
        ax.scatter([x], [y], s=80, color=COLORS[name], label=name, zorder=3)
        ax.annotate(
            f"{name}\n{entry['params']:,} params", (x, y), textcoords="offset points",
            xytext=(8, -4), fontsize=8,
        )
    ax.set_xscale("log")
    ax.set_xlabel("CPU latency, batch 1, p50 (ms, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("accuracy against latency")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    path = Path(path)
    _save(fig, path)
    plt.close(fig)
    return path


def training_curves(histories: dict[str, list[dict[str, Any]]], path: str | Path) -> Path:
    """Training loss along the epochs and the held-out metric after each, one line per trained
    model."""
    fig = training_curves_figure(histories)
    path = Path(path)
    _save(fig, path)
    _pyplot().close(fig)
    return path


def _loss_line(history: list[dict[str, Any]]) -> tuple[list[float], list[float]]:
    """The loss against fractional epochs: each epoch's trace of window means where it was
    kept (a one-epoch run is otherwise a single point), else the epoch's mean."""
    xs: list[float] = []
    ys: list[float] = []
    for h in history:
        trace = h.get("loss_trace")
        if trace and trace.get("steps"):
            xs += [h["epoch"] - 1 + s / trace["of"] for s in trace["steps"]]
            ys += trace["loss"]
        else:
            xs.append(h["epoch"])
            ys.append(h["train_loss"])
    return xs, ys


def _plain_log(ax) -> None:
    """A log-scale y axis labelled 110 and 0.8, not 1.1 × 10² and 8 × 10⁻¹."""
    from matplotlib.ticker import ScalarFormatter

    ax.set_yscale("log")
    for formatter in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
        formatter(ScalarFormatter())


def _whole_epochs(ax, epochs: list[int]) -> None:
    """Ticks at the epochs an axis shows (one epoch: 1, not 0.96 … 1.04)."""
    shown = sorted(set(epochs))
    if 0 < len(shown) <= 12:
        ax.set_xticks(shown)
    if len(shown) == 1:
        ax.set_xlim(shown[0] - 0.5, shown[0] + 0.5)


def training_curves_figure(histories: dict[str, list[dict[str, Any]]]):
    plt = _pyplot()
    fig, (loss_ax, eval_ax) = plt.subplots(1, 2, figsize=(10, 3.8))
    # a classifier's test accuracy, else a language model's held-out perplexity
    metric = next((key for key in ("eval_accuracy", "eval_perplexity")
                   if any(h and key in h[0] for h in histories.values())), None)
    for name, history in histories.items():
        if not history:
            continue
        epochs = [h["epoch"] for h in history]
        color = COLORS.get(name)
        xs, ys = _loss_line(history)
        loss_ax.plot(xs, ys, label=name, color=color, marker="o" if len(xs) == 1 else None,
                     markersize=3)  # one epoch without a trace: a point, not an empty plot
        if len(xs) == 1:
            _whole_epochs(loss_ax, epochs)
        if metric is not None and metric in history[0]:
            scale = 100 if metric == "eval_accuracy" else 1
            values = [scale * h[metric] for h in history]
            eval_ax.plot(epochs, values, label=name, color=color, marker="o", markersize=3)
            if len(values) == 1:  # one epoch: the number, not a lone dot to read off an axis
                eval_ax.annotate(f"{values[0]:.2f}", (epochs[0], values[0]), color=color,
                                 xytext=(6, 0), textcoords="offset points", va="center",
                                 fontsize=8)
    loss_ax.set_title("training loss (each model's own objective)")
    loss_ax.set_xlabel("epoch")
    _plain_log(loss_ax)
    eval_ax.set_xlabel("epoch")
    _whole_epochs(eval_ax, [h["epoch"] for hs in histories.values() for h in hs])
    if metric == "eval_perplexity":
        eval_ax.set_title("held-out perplexity after each epoch")
        _plain_log(eval_ax)
    else:
        eval_ax.set_title("test accuracy after each epoch")
        eval_ax.set_ylabel("%")
    if not eval_ax.lines:  # e.g. sentence embeddings: nothing to follow
        eval_ax.text(0.5, 0.5, "no test accuracy recorded", ha="center", va="center",
                     transform=eval_ax.transAxes, color="gray")
    for ax in (loss_ax, eval_ax):
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    return fig
