"""The report's diagnostic figures, drawn from metrics.json alone (so a report can be redrawn
from a finished run): per-class accuracy, confusion difference, reliability, and the
accuracy-latency plane with its Pareto frontier."""

from __future__ import annotations

import base64
import io
from typing import Any

from distill.report.plots import COLORS, _pyplot


def data_uri(fig) -> str:
    """The figure as an inline PNG (``data:`` URI): the HTML report is one file."""
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both (lower latency, higher accuracy),
    in order of latency."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], float("-inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def pareto_plot(rows: list[dict[str, Any]], budget_ms: float | None = None):
    """Each row (``name``, ``latency_ms``, ``accuracy``) a point; the frontier joined."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    points = [(r["latency_ms"], 100 * r["accuracy"]) for r in rows]
    for row, (x, y) in zip(rows, points, strict=True):
        color = COLORS.get(row["name"], "#4c72b0")
        ax.scatter([x], [y], s=60, color=color, zorder=3)
        ax.annotate(row["name"], (x, y), textcoords="offset points", xytext=(6, 4), fontsize=8)
    front = pareto_front(points)
    if len(front) > 1:
        ax.plot([points[i][0] for i in front], [points[i][1] for i in front], "--",
                color="#444444", linewidth=1, label="Pareto frontier")
    if budget_ms is not None:
        ax.axvline(budget_ms, color="#c0392b", linewidth=1, label=f"budget {budget_ms:.3g} ms")
    latencies = [x for x, _ in points]
    if max(latencies) > 10 * min(latencies):  # a log axis only where it spans decades
        from matplotlib.ticker import FuncFormatter, NullFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("CPU latency, batch 1, p50 (ms)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="lower right")
    return fig


def per_class_plot(diagnostics: dict[str, Any]):
    """Teacher and student accuracy per class, the student's losses marked."""
    plt = _pyplot()
    names = diagnostics["class_names"]
    acc = diagnostics["per_class_accuracy"]
    flagged = {f["class"] for f in diagnostics["flags"]["flagged"]}
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(names)), 3.8))
    models = [m for m in ("teacher", "baseline", "student") if m in acc]
    width = 0.8 / len(models)
    for k, model in enumerate(models):
        xs = [c + (k - (len(models) - 1) / 2) * width for c in range(len(names))]
        ys = [100 * v if v is not None else 0 for v in acc[model]]
        ax.bar(xs, ys, width=width, color=COLORS.get(model), label=model)
    for c in flagged:
        ax.annotate("▼", (c, 1), ha="center", color="#c0392b", fontsize=11)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("accuracy (%)")
    low = min((100 * v for m in models for v in acc[m] if v is not None), default=0.0)
    ax.set_ylim(max(0.0, low - 10), 100)
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(True, axis="y", alpha=0.3)
    return fig


def confusion_difference_plot(diagnostics: dict[str, Any]):
    """Student minus teacher confusion counts: red where the student errs more."""
    plt = _pyplot()
    names = diagnostics["class_names"]
    student, teacher = diagnostics["confusion"]["student"], diagnostics["confusion"]["teacher"]
    diff = [[s - t for s, t in zip(srow, trow, strict=True)]
            for srow, trow in zip(student, teacher, strict=True)]
    for i in range(len(diff)):  # the diagonal is correct answers: show errors only
        diff[i][i] = 0
    limit = max(1, max(abs(v) for row in diff for v in row))
    size = max(4.5, 0.5 * len(names))
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(diff, cmap="RdBu_r", vmin=-limit, vmax=limit)
    if len(names) <= 20:
        for i, row in enumerate(diff):
            for j, v in enumerate(row):
                if v:
                    ax.text(j, i, str(v), ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.colorbar(image, ax=ax, label="student − teacher (test samples)")
    return fig


def reliability_plot(diagnostics: dict[str, Any]):
    """Accuracy against confidence per bin: on the diagonal is calibrated."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.plot([0, 1], [0, 1], ":", color="#888888", label="calibrated")
    for model, bins in diagnostics["calibration"].items():
        xs = [c for c, a in zip(bins["confidence"], bins["accuracy"], strict=True)
              if c is not None and a is not None]
        ys = [a for c, a in zip(bins["confidence"], bins["accuracy"], strict=True)
              if c is not None and a is not None]
        ax.plot(xs, ys, marker="o", markersize=3, color=COLORS.get(model), label=model)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return fig
