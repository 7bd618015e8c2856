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


def misses(row: dict[str, Any], limits: dict[str, Any]) -> list[str]:
    """What ``row`` misses each limit by, in words (empty when it meets them all)."""
    out = []
    budget = limits.get("max_latency_ms")
    if budget is not None and row["latency_ms_p50"] > budget:
        out.append(f"latency {row['latency_ms_p50']:.3f} ms, {row['latency_ms_p50'] / budget:.2f}"
                   f"× the {budget:.3f} ms budget")
    size = limits.get("max_size_bytes")
    if size is not None and row["size_bytes"] > size:
        out.append(f"size {row['size_bytes'] / 1e6:.2f} MB over {size / 1e6:.2f} MB")
    keep = limits.get("min_retention")
    if keep is not None and row.get("retention") is not None and row["retention"] < keep:
        out.append(f"retention {100 * row['retention']:.2f}% under {100 * keep:.2f}%")
    return out


def closest(result: dict[str, Any], count: int = 3) -> list[tuple[str, list[str]]]:
    """When no plan meets the budget: the candidates nearest to it and what each misses by.
    Measured finalists when there are any (retention known), else the latency screen."""
    limits = result["budget"]
    rows = result["finalists"] or [{"name": n, **s} for n, s in result["screen"].items()]

    def shortfall(row: dict[str, Any]) -> float:
        """How far out, relative to each limit, summed (0 = within every limit)."""
        total = 0.0
        if limits.get("max_latency_ms"):
            total += max(0.0, row["latency_ms_p50"] / limits["max_latency_ms"] - 1)
        if limits.get("max_size_bytes"):
            total += max(0.0, row["size_bytes"] / limits["max_size_bytes"] - 1)
        if limits.get("min_retention") and row.get("retention") is not None:
            total += max(0.0, 1 - row["retention"] / limits["min_retention"])
        return total

    ranked = sorted(rows, key=shortfall)[:count]
    return [(r["name"], misses(r, limits)) for r in ranked]
