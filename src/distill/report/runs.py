"""One table across finished runs: what each recipe's student kept, bought and cost."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from distill.report.formatting import pct as _pct
from distill.report.formatting import ratio as _ratio

COLUMNS = ("run", "teacher acc", "student acc", "baseline acc", "student − baseline",
           "retention", "speedup", "compression", "student params", "student latency b1")


def read_run(folder: str | Path) -> dict[str, Any]:
    """A run folder's metrics.json; a folder without one is not a finished run."""
    path = Path(folder) / "metrics.json"
    if not path.is_file():
        error = Path(folder) / "error.txt"
        why = f" (it failed: {error.read_text().strip()})" if error.is_file() else ""
        raise FileNotFoundError(f"{folder} holds no metrics.json: not a finished run{why}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err


def runs_table(folders: list[str | Path]) -> str:
    """Markdown: one row per run, in the order given."""
    rows = ["| " + " | ".join(COLUMNS) + " |", "|---" + "|---:" * (len(COLUMNS) - 1) + "|"]
    runs: list[dict[str, Any]] = []
    for folder in folders:
        m = read_run(folder)
        student = m.get("student", {})
        latency = student.get("latency_ms_p50")
        cells = [m.get("name") or Path(folder).name,
                 _pct(m.get("teacher", {}).get("accuracy")), _pct(student.get("accuracy")),
                 _pct((m.get("baseline") or {}).get("accuracy")), _gain(m),
                 _pct(m.get("retention"))
                 + (" (meaningless: teacher at chance)" if m.get("teacher_near_chance") else ""),
                 _ratio(m.get("speedup")), _ratio(m.get("compression")),
                 f"{student.get('params', 0):,}",
                 f"{latency:.3f} ms" if isinstance(latency, int | float) else "–"]
        rows.append("| " + " | ".join(cells) + " |")
        runs.append(m)
    return "\n".join(rows + _machines(runs, folders) + _over_seeds(runs))


def _machines(runs: list[dict[str, Any]], folders: list[str | Path]) -> list[str]:
    """Where each run's latency was measured: a speed-up holds on CPUs with the same
    instruction sets, so runs measured on different ones are said to be incomparable."""
    from distill.report.formatting import machine_line

    where: dict[str, list[str]] = {}
    for m, folder in zip(runs, folders, strict=True):
        name = m.get("name") or Path(folder).name
        where.setdefault(machine_line(m.get("environment") or {}), []).append(name)
    if len(where) == 1:
        return ["", f"Latency measured on {next(iter(where))}."]
    return ["", "Latency measured on different machines, so their speed-ups do not compare: "
            + "; ".join(f"{cpu} ({', '.join(names)})" for cpu, names in where.items()) + "."]


def _gain(m: dict[str, Any]) -> str:
    """Student minus baseline in points, or "no measurable difference" with its interval."""
    diff = (m.get("differences") or {}).get("student_vs_baseline")
    if diff is None:
        return "–"
    if not diff["measurable"]:
        return f"no measurable difference (±{100 * diff['half_width']:.2f})"
    return f"{100 * diff['difference']:+.2f} pts (±{100 * diff['half_width']:.2f})"


def _without_seed(m: dict[str, Any]) -> str | None:
    recipe = m.get("recipe")
    if not isinstance(recipe, dict):
        return None
    recipe = {k: v for k, v in recipe.items() if k != "name"}
    if isinstance(recipe.get("train"), dict):
        recipe["train"] = {k: v for k, v in recipe["train"].items() if k != "seed"}
    return json.dumps(recipe, sort_keys=True)


def _over_seeds(runs: list[dict[str, Any]]) -> list[str]:
    """Runs of one recipe that differ only in [train] seed: their spread is the uncertainty
    (mean ± std, and the student–baseline difference with Welch's interval)."""
    from distill.evaluate.uncertainty import describe_difference, seeds_difference

    groups: dict[str, list[dict[str, Any]]] = {}
    for m in runs:
        key = _without_seed(m)
        if key is not None:
            groups.setdefault(key, []).append(m)
    lines = []
    for runs_of_recipe in groups.values():
        by_seed = {m["recipe"].get("train", {}).get("seed"): m for m in runs_of_recipe}
        group = list(by_seed.values())  # the same seed twice is one run, not two seeds
        if len(group) < 2:
            continue
        name = group[0].get("name") or "recipe"
        accuracy = {role: [m[role]["accuracy"] for m in group
                           if isinstance(m.get(role), dict) and "accuracy" in m[role]]
                    for role in ("student", "baseline")}
        student = accuracy["student"]
        text = (f"{name}, {len(group)} seeds: student {100 * _mean(student):.2f} ± "
                f"{100 * _std(student):.2f}%")
        if len(accuracy["baseline"]) == len(group):
            baseline = accuracy["baseline"]
            diff = seeds_difference(student, baseline)
            text += (f", baseline {100 * _mean(baseline):.2f} ± {100 * _std(baseline):.2f}%; "
                     + describe_difference(diff, "student", "baseline") + " over seeds")
        lines.append(text)
    return ["", *lines] if lines else []


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _std(values: list[float]) -> float:
    mean = _mean(values)
    return (sum((v - mean) ** 2 for v in values) / max(len(values) - 1, 1)) ** 0.5
