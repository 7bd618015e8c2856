"""One table across finished runs: what each recipe's student kept, bought and cost."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from distill.report.formatting import pct as _pct
from distill.report.formatting import ratio as _ratio

COLUMNS = ("run", "teacher acc", "student acc", "baseline acc", "retention", "speedup",
           "compression", "student params", "student latency b1")


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
    for folder in folders:
        m = read_run(folder)
        student = m.get("student", {})
        latency = student.get("latency_ms_p50")
        cells = [m.get("name") or Path(folder).name,
                 _pct(m.get("teacher", {}).get("accuracy")), _pct(student.get("accuracy")),
                 _pct((m.get("baseline") or {}).get("accuracy")), _pct(m.get("retention")),
                 _ratio(m.get("speedup")), _ratio(m.get("compression")),
                 f"{student.get('params', 0):,}",
                 f"{latency:.3f} ms" if isinstance(latency, int | float) else "–"]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)
