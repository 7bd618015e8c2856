"""The Pareto frontier of measured plans and the one to recommend."""

from __future__ import annotations

from typing import Any


def _dominates(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """``a`` is at least as good as ``b`` on retention, latency and size, better on one."""
    no_worse = (a["retention"] >= b["retention"] and a["latency_ms_p50"] <= b["latency_ms_p50"]
                and a["size_bytes"] <= b["size_bytes"])
    better = (a["retention"] > b["retention"] or a["latency_ms_p50"] < b["latency_ms_p50"]
              or a["size_bytes"] < b["size_bytes"])
    return no_worse and better


def pareto(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows no other row dominates, fastest first."""
    front = [r for r in rows if not any(_dominates(o, r) for o in rows if o is not r)]
    return sorted(front, key=lambda r: r["latency_ms_p50"])


def meets(row: dict[str, Any], limits: dict[str, Any]) -> bool:
    return ((limits.get("max_latency_ms") is None
             or row["latency_ms_p50"] <= limits["max_latency_ms"])
            and (limits.get("max_size_bytes") is None
                 or row["size_bytes"] <= limits["max_size_bytes"])
            and (limits.get("min_retention") is None
                 or row["retention"] >= limits["min_retention"]))


def choose(rows: list[dict[str, Any]], limits: dict[str, Any]) -> dict[str, Any] | None:
    """Among the plans within every limit, the one that keeps most accuracy (then the
    fastest); None when no plan meets them."""
    fitting = [r for r in rows if meets(r, limits)]
    if not fitting:
        return None
    return max(fitting, key=lambda r: (round(r["retention"], 4), -r["latency_ms_p50"]))
