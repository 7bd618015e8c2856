"""The planner's page: the budget, the frontier plot, the finalists, and how the search spent
its compute (screen, rungs)."""

from __future__ import annotations

from html import escape
from typing import Any

from distill.report.figures import pareto_plot
from distill.report.formatting import ms as _ms
from distill.report.formatting import pct as _pct
from distill.report.formatting import size as _size
from distill.report.html import STYLE, img

SECTIONS = ("budget", "pareto", "finalists", "search")


def _finalists(result: dict[str, Any]) -> str:
    onnx = result.get("teacher_onnx_fp32") is not None
    head = ("plan", "accuracy", "retention", "agreement", "latency p50", "latency p95",
            "speed-up", *(("vs teacher in ONNX Runtime fp32",) if onnx else ()), "size",
            "frontier")
    body = []
    for r in sorted(result["finalists"], key=lambda r: r["latency_ms_p50"]):
        name = escape(r["name"])
        if r["name"] == result["recommended"]:
            name = f'<span class="flag">{name} (recommended)</span>'
        versus = r.get("speedup_vs_onnx_teacher")
        cells = [name, _pct(r["accuracy"]), _pct(r["retention"]), _pct(r.get("agreement")),
                 _ms(r["latency_ms_p50"]), _ms(r["latency_ms_p95"]), f"{r['speedup']:.2f}×",
                 *((f"{versus:.2f}×" if versus else "–",) if onnx else ()),
                 _size(r["size_bytes"]), "●" if r["name"] in result["frontier"] else ""]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return ("<table><thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead>"
            "<tbody>" + "".join(body) + "</tbody></table>")


def _shape(key: Any) -> str:
    """A rung's key: a width (image students) or a text student's blocks ("3 blocks")."""
    try:
        return f"width {float(key):g}"
    except ValueError:
        return escape(str(key))


def _search(result: dict[str, Any]) -> str:
    screen = "".join(
        f"<tr><td>{escape(name)}</td><td>{_ms(s['latency_ms_p50'])}</td>"
        f"<td>{_size(s['size_bytes'])}</td><td>{'yes' if s['passed'] else 'no'}</td></tr>"
        for name, s in result["screen"].items())
    rungs = "".join(
        f"<li>{r['epochs']} epoch(s): " + ", ".join(
            f"{_shape(w)} → {_pct(a)}" for w, a in r["held_out_accuracy"].items())
        + f"; kept {', '.join(_shape(w) for w in r['kept'])}</li>" for r in result["rungs"])
    return ("<p>Screen: every candidate deployed untrained, batch-1 latency beside the "
            "teacher's (weights do not change speed).</p><table><thead><tr><th>candidate</th>"
            "<th>latency p50</th><th>size</th><th>within budget</th></tr></thead><tbody>"
            + screen + "</tbody></table><p>Successive halving (short distillations, ranked on "
            "10% of the training set held out):</p><ul>" + (rungs or "<li>not needed</li>")
            + "</ul>")


def render_plan_html(result: dict[str, Any]) -> str:
    budget = result["budget"]
    rec = result["recommended"]
    limits = [f"batch-1 latency ≤ {budget['max_latency_ms']:.3f} ms"]
    if budget.get("max_size_bytes"):
        limits.append(f"size ≤ {_size(budget['max_size_bytes'])}")
    if budget.get("min_retention"):
        limits.append(f"retention ≥ {_pct(budget['min_retention'])}")
    verdict = (f"Recommended: <b>{escape(rec)}</b> (written to <code>recommended.toml</code>)."
               if rec else '<span class="flag">No plan met every limit.</span>')
    rows = [{"name": r["name"], "latency_ms": r["latency_ms_p50"], "accuracy": r["accuracy"]}
            for r in result["finalists"]]
    teacher = result["teacher"]
    if teacher.get("accuracy") is not None:
        rows.append({"name": "teacher", "latency_ms": teacher["latency_ms_p50"],
                     "accuracy": teacher["accuracy"]})
    sections = {
        "budget": ("Budget", f"<p>{escape('; '.join(limits))}. Teacher: "
                   f"{_pct(teacher.get('accuracy'))} at {_ms(teacher['latency_ms_p50'])}."
                   f"</p><p>{verdict}</p><p>Latency measured on "
                   f"{escape(str(result.get('cpu', 'this CPU')))}, "
                   f"{result.get('threads', 1)} thread(s), batch 1.</p>"),
        "pareto": ("Accuracy against latency",
                   img(pareto_plot(rows, budget["max_latency_ms"]), "plan frontier")
                   if rows else "<p class=\"none\">No candidate was within the budget.</p>"),
        "finalists": ("Finalists, measured side by side", _finalists(result)),
        "search": ("How the search spent its compute", _search(result)),
    }
    body = "".join(f'<section id="{k}"><h2>{escape(h)}</h2>{c}</section>'
                   for k, (h, c) in sections.items())
    title = f"Plan: {result.get('recipe') or 'recipe'}"
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{escape(title)}</h1>{body}</body></html>\n")
