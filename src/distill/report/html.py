"""``report.html``: one self-contained page (plots inlined) that a person reads in a browser.

It is drawn from ``metrics.json`` alone, so ``distill report RUN`` can redraw it for any
finished run. Sections have stable ids (``summary``, ``pareto``, ``training``, ``per-class``,
``confusion``, ``calibration``, ``inherited``, ``reproduce``) that the tests look for.
"""

from __future__ import annotations

from html import escape
from typing import Any

from distill.report.figures import (
    confusion_difference_plot,
    data_uri,
    pareto_plot,
    per_class_plot,
    reliability_plot,
)
from distill.report.formatting import findings, latency_note, machine_line, pct_ci, warnings_of
from distill.report.formatting import ms as _ms
from distill.report.formatting import pct as _pct
from distill.report.formatting import size as _size
from distill.report.plots import training_curves_figure

SECTIONS = ("summary", "pareto", "training", "per-class", "confusion", "calibration",
            "inherited", "reproduce")
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;
color:#1d1d1f;padding:0 1rem;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;
margin-top:2.2rem} .meta{color:#666;font-size:.9rem}
table{border-collapse:collapse;margin:.8rem 0;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.3rem .6rem;text-align:right} th{background:#f5f5f7}
td:first-child,th:first-child{text-align:left} img{max-width:100%;height:auto}
.flag{color:#c0392b;font-weight:600} .none{color:#888;font-style:italic}
.warning{background:#fdecea;border-left:4px solid #c0392b;padding:.6rem 1rem;margin:1rem 0}
pre{background:#f5f5f7;padding:.8rem;overflow:auto;font-size:.85rem}
.cards{display:flex;gap:1rem;flex-wrap:wrap} .card{background:#f5f5f7;border-radius:8px;
padding:.6rem 1rem;min-width:9rem} .card b{display:block;font-size:1.3rem}
"""


def _rows(metrics: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Teacher, each pipeline stage, the baseline and the final student, in that order."""
    rows = [("teacher", metrics["teacher"])] if metrics.get("teacher") else []
    rows += [(f"stage {i}: {s['name']}", s) for i, s in enumerate(metrics.get("stages", []))]
    rows += [(n, metrics[n]) for n in ("baseline", "student") if metrics.get(n)]
    return rows


def _summary(metrics: dict[str, Any]) -> str:
    teacher = metrics.get("teacher") or {}
    lm = metrics.get("task") == "causal-lm"  # quality is perplexity: lower is better
    head = ("model", "perplexity" if lm else "accuracy (95% interval)", "retention",
            "agreement", "params", "size", "latency p50", "latency p95", "speedup")
    body = []
    for name, e in _rows(metrics):
        acc, t_acc = e.get("accuracy"), teacher.get("accuracy")
        retention = acc / t_acc if acc is not None and t_acc else None
        if lm:
            ppl, t_ppl = e.get("perplexity"), teacher.get("perplexity")
            retention = t_ppl / ppl if ppl and t_ppl else None
        speedup = (teacher["latency_ms_p50"] / e["latency_ms_p50"]
                   if teacher.get("latency_ms_p50") and e.get("latency_ms_p50") else None)
        quality = (f"{e['perplexity']:.2f}" if lm and e.get("perplexity") is not None
                   else pct_ci(acc, e.get("accuracy_ci95")))
        cells = [escape(name), quality, _pct(retention),
                 _pct(e.get("agreement")),
                 f"{e['params']:,}" if e.get("params") is not None else "–",
                 _size(e.get("size_bytes")), _ms(e.get("latency_ms_p50")),
                 _ms(e.get("latency_ms_p95")), "–" if speedup is None else f"{speedup:.2f}×"]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    retention = _pct(metrics.get("retention"))
    if metrics.get("retention_note"):
        retention = (f'<span class="flag" title="{escape(metrics["retention_note"])}">'
                     f"{retention} (meaningless)</span>")
    cards = [("retention", retention),
             ("speed-up (batch 1)", "–" if metrics.get("speedup") is None
              else f"{metrics['speedup']:.2f}×"),
             ("compression", "–" if metrics.get("compression") is None
              else f"{metrics['compression']:.1f}×")]
    if metrics.get("gap_closed") is not None:
        cards.append(("gap closed vs hard labels", _pct(metrics["gap_closed"])))
    return ('<div class="cards">' + "".join(f'<div class="card">{escape(k)}<b>{v}</b></div>'
                                            for k, v in cards) + "</div>"
            + "<table><thead><tr>" + "".join(f"<th>{h}</th>" for h in head)
            + "</tr></thead><tbody>" + "".join(body) + "</tbody></table>"
            + ('<p class="meta">Retention: the teacher\'s perplexity ÷ the model\'s on held-out '
               "text; agreement: share of positions where the model's most likely next token "
               "is the teacher's; speed-up: the teacher's batch-1 median latency per sequence "
               "÷ the model's, measured side by side in this run.</p>" + _speed(metrics)
            + _generations(metrics)
               if lm else
               '<p class="meta">Retention: accuracy ÷ the teacher\'s; agreement: share of test '
               "samples where the model's top class is the teacher's; speed-up: the teacher's "
               "batch-1 median latency ÷ the model's, measured side by side in this run.</p>")
            + _findings(metrics))


def _speed(metrics: dict[str, Any]) -> str:
    """Generation speed per prompt length and thread count, the models side by side."""
    from distill.report.markdown import speed_rows

    models, rows = speed_rows(metrics)
    if not rows:
        return ""
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>"
                   for cells in rows)
    return ("<h3>Generation speed</h3><p>Batch 1, KV cache, greedy; medians of runs taken in "
            "turns (× the teacher's decode speed).</p><table><thead><tr><th>prompt</th>"
            + "".join(f"<th>{escape(m)}</th>" for m in models)
            + f"</tr></thead><tbody>{body}</tbody></table>")


def _generations(metrics: dict[str, Any]) -> str:
    """Greedy continuations of held-out openings, the models side by side."""
    samples = metrics.get("generations") or []
    if not samples or "prompt" not in samples[0]:
        return ""
    keys = list(samples[0])
    rows = "".join("<tr>" + "".join(f"<td>{escape(str(s.get(k, '')))}</td>" for k in keys)
                   + "</tr>" for s in samples)
    return ("<h3>Sample continuations</h3><table><thead><tr>"
            + "".join(f"<th>{escape(k)}</th>" for k in keys)
            + f"</tr></thead><tbody>{rows}</tbody></table>")


def _findings(metrics: dict[str, Any]) -> str:
    """The run's comparisons in words, noise said as noise, and why batch-1 latency fell
    less than the parameter count."""
    found = findings(metrics)
    out = ""
    if found:
        out += ("<p><b>What the differences mean</b> (paired 95% intervals over the same test "
                "samples; inside the interval is noise, not a finding):</p><ul>"
                + "".join(f"<li>{escape(line)}</li>" for line in found) + "</ul>")
    sizes = [int(k.rsplit("_b", 1)[1]) for k in (metrics.get("student") or {})
             if k.startswith("latency_ms_p50_b")]
    note = latency_note(metrics, max(sizes) if sizes else None)
    if note:
        out += f"<p><b>Latency.</b> {escape(note)}</p>"
    return out


def img(fig, alt: str) -> str:
    """A figure inlined as an <img> (the page stays one file)."""
    return f'<img alt="{escape(alt)}" src="{data_uri(fig)}">'


def _missing(what: str) -> str:
    return f'<p class="none">No {escape(what)} for this run.</p>'


def _pareto(metrics: dict[str, Any]) -> str:
    rows = [{"name": n, "latency_ms": e["latency_ms_p50"], "accuracy": e["accuracy"]}
            for n, e in _rows(metrics)
            if e.get("accuracy") is not None and e.get("latency_ms_p50") is not None]
    if not rows:
        return _missing("accuracy to plot against latency")
    return (img(pareto_plot(rows, metrics.get("budget_ms")), "accuracy against latency")
            + '<p class="meta">Each model at its batch-1 median latency; the dashed line joins '
            "the ones nothing else beats on both speed and accuracy.</p>")


def _training(metrics: dict[str, Any]) -> str:
    histories = {k: v for k, v in (metrics.get("history") or {}).items() if v}
    if not histories:
        return _missing("training history")
    return img(training_curves_figure(histories), "training curves")


def _per_class(d: dict[str, Any]) -> str:
    names, acc = d["class_names"], d["per_class_accuracy"]
    losses = sorted(((acc["teacher"][c] - acc["student"][c], c) for c in range(len(names))
                     if acc["teacher"][c] is not None and acc["student"][c] is not None),
                    reverse=True)[:5]
    table = ["<table><thead><tr><th>class</th><th>teacher</th><th>student</th><th>lost</th>"
             "<th>test samples</th></tr></thead><tbody>"]
    for lost, c in losses:
        table.append(f"<tr><td>{escape(names[c])}</td><td>{_pct(acc['teacher'][c])}</td>"
                     f"<td>{_pct(acc['student'][c])}</td><td>{100 * lost:+.2f} pts</td>"
                     f"<td>{d['support'][c]:,}</td></tr>")
    table.append("</tbody></table>")
    return (img(per_class_plot(d), "per-class accuracy")
            + "<p>The classes where the student lost most against the teacher:</p>"
            + "".join(table))


def _calibration(metrics: dict[str, Any], d: dict[str, Any]) -> str:
    eces = ", ".join(f"{escape(n)} {metrics[n]['ece']:.3f}" for n in d["calibration"]
                     if isinstance(metrics.get(n), dict) and metrics[n].get("ece") is not None)
    return (img(reliability_plot(d), "reliability diagram")
            + f"<p>Expected calibration error (lower is better): {eces or '–'}.</p>")


def _inherited(d: dict[str, Any]) -> str:
    flags, inh, names = d["flags"], d["inherited"], d["class_names"]
    parts = []
    if flags["flagged"]:
        items = "".join(
            f'<li><span class="flag">{escape(names[f["class"]])}</span>: error grew '
            f"{100 * f['error_growth']:+.2f} pts (average over classes "
            f"{100 * flags['mean_error_growth']:+.2f} pts; flagged above "
            f"{100 * f['threshold']:+.2f} pts)</li>" for f in flags["flagged"])
        parts.append("<p>Classes whose error grew by more than the average, beyond two standard "
                     f"errors of their own estimate:</p><ul>{items}</ul>")
    else:
        parts.append("<p>No class's error grew beyond the average by more than two standard "
                     f"errors (average growth {100 * flags['mean_error_growth']:+.2f} pts).</p>")
    share = inh["share_of_student_errors"]
    repeated = inh["share_of_teacher_errors_repeated"]
    parts.append(
        f"<p>The student makes {inh['student_errors']:,} errors on the test set, the teacher "
        f"{inh['teacher_errors']:,}. <b>{inh['same_wrong_answer']:,}</b> are the same wrong "
        f"answer as the teacher's ({_pct(share)} of the student's errors; {_pct(repeated)} of "
        f"the teacher's errors repeated). New errors: {inh['new_errors']:,}; teacher errors the "
        f"student got right: {inh['fixed_errors']:,}.</p>")
    return "".join(parts)


def render_html(metrics: dict[str, Any], recipe_toml: str | None = None) -> str:
    """The whole page as a string (the recipe shown: ``recipe_toml``, else the run's own)."""
    if recipe_toml is None:
        recipe_toml = str(metrics.get("recipe_text") or "")
    env = metrics.get("environment", {})
    student = metrics.get("student") or {}
    title = f"Distillation report: {metrics.get('name', 'run')}"
    d = metrics.get("diagnostics")
    body = {
        "summary": ("Summary", _summary(metrics)),
        "pareto": ("Accuracy against latency", _pareto(metrics)),
        "training": ("Training curves", _training(metrics)),
        "per-class": ("Per-class accuracy", _per_class(d) if d else _missing("per-class data")),
        "confusion": ("Confusion difference (student − teacher)",
                      img(confusion_difference_plot(d), "confusion difference")
                      if d else _missing("confusion matrices")),
        "calibration": ("Calibration", _calibration(metrics, d) if d
                        else _missing("calibration data")),
        "inherited": ("Inherited and amplified errors", _inherited(d) if d
                      else _missing("error analysis")),
        "reproduce": ("Reproduce", f"<pre>{escape(recipe_toml.rstrip()) or 'no recipe'}</pre>"
                      "<p>Saved student: <code>student/</code> (<code>distill.load(path)"
                      "</code>); every number: <code>metrics.json</code>.</p>"),
    }
    sections = "".join(f'<section id="{key}"><h2>{escape(heading)}</h2>{content}</section>'
                       for key, (heading, content) in body.items())
    meta = (f"Created {escape(str(metrics.get('created', '?')))} on "
            f"{escape(machine_line(env))}; "
            f"latency with {student.get('latency_threads', '?')} thread(s); torch "
            f"{escape(str(env.get('torch', '?')))}.")
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{escape(title)}</h1><p class=\"meta\">{meta}</p>{_warnings(metrics)}"
            f"{sections}</body></html>\n")


def _warnings(metrics: dict[str, Any]) -> str:
    """Each warning in a red box above everything else: the numbers below may mean nothing."""
    return "".join(f'<div class="warning" id="warning-{i}" role="alert"><b>WARNING:</b> '
                   f"{escape(w)}</div>" for i, w in enumerate(warnings_of(metrics)))
