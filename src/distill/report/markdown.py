"""``report.md``: the run's numbers in one table, its plots, and how to reproduce it."""

from __future__ import annotations

from typing import Any

ROWS = ("teacher", "baseline", "student")


def _pct(v: Any) -> str:
    return "–" if v is None else f"{100 * v:.2f}%"


def _num(v: Any, fmt: str = "{:.3f}") -> str:
    return "–" if v is None else fmt.format(v)


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def summary_table(metrics: dict[str, Any]) -> str:
    header = (
        "| model | accuracy | agreement | KL to teacher | ECE | params | size | "
        "latency p50 (b1) | p95 (b1) | p50 (b64) |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    rows = []
    for name in ROWS:
        e = metrics.get(name)
        if not e:
            continue
        rows.append(
            f"| {name} | {_pct(e.get('accuracy'))} | {_pct(e.get('agreement'))} | "
            f"{_num(e.get('kl_to_teacher'))} | {_num(e.get('ece'))} | {e['params']:,} | "
            f"{_size(e['size_bytes'])} | {_num(e['latency_ms_p50'])} ms | "
            f"{_num(e['latency_ms_p95'])} ms | {_num(e.get('latency_ms_p50_b64'))} ms |"
        )
    return header + "\n".join(rows) + "\n"


def render_report(metrics: dict[str, Any], recipe_toml: str, plots: dict[str, str]) -> str:
    env = metrics.get("environment", {})
    lines = [
        f"# Distillation report: {metrics.get('name', 'run')}",
        "",
        f"Created {metrics.get('created', '?')} on {env.get('machine', '?')} "
        f"({env.get('cpu_count', '?')} CPUs; latency measured with "
        f"{metrics['student'].get('latency_threads', '?')} thread(s); "
        f"torch {env.get('torch', '?')}).",
        "",
        "## Summary",
        "",
        summary_table(metrics),
        f"- **Retention** (student / teacher accuracy): {_pct(metrics.get('retention'))}",
        f"- **Speedup** (teacher / student latency, batch 1, p50): "
        f"{_num(metrics.get('speedup'), '{:.2f}')}×",
        f"- **Compression** (teacher / student parameters): "
        f"{_num(metrics.get('compression'), '{:.1f}')}×",
    ]
    if "gap_closed" in metrics:
        lines.append(
            f"- **Gap closed** by distillation (student − baseline) / (teacher − baseline): "
            f"{_pct(metrics.get('gap_closed'))}; the baseline is the same student trained on "
            "hard labels only."
            + (" Not defined here: the baseline matched or beat the teacher."
               if metrics.get("gap_closed") is None else "")
        )
    lines += ["", "## Plots", ""]
    for title, rel in plots.items():
        lines += [f"![{title}]({rel})", ""]
    lines += [
        "## Reproduce",
        "",
        "```toml",
        recipe_toml.rstrip(),
        "```",
        "",
        "Saved student: `student/` (load with `distill.load(path)`); all numbers: `metrics.json`.",
        "",
    ]
    return "\n".join(lines)
