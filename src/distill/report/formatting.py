"""How the reports write numbers: one place, so the markdown, HTML and plan pages agree."""

from __future__ import annotations

from typing import Any

MISSING = "–"


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def pct(v: Any) -> str:
    return f"{100 * v:.2f}%" if _number(v) else MISSING


def num(v: Any, fmt: str = "{:.3f}") -> str:
    return fmt.format(v) if _number(v) else MISSING


def ms(v: Any) -> str:
    return f"{v:.3f} ms" if _number(v) else MISSING


def size(n: Any) -> str:
    if not _number(n):
        return MISSING
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def ratio(v: Any) -> str:
    return f"{v:.2f}×" if _number(v) else MISSING


def pct_ci(v: Any, ci: Any) -> str:
    """An accuracy with its 95% interval: ``92.36% (91.83–92.87)``."""
    if not _number(v):
        return MISSING
    if not (isinstance(ci, list | tuple) and len(ci) == 2 and all(_number(c) for c in ci)):
        return pct(v)
    return f"{100 * v:.2f}% ({100 * ci[0]:.2f}–{100 * ci[1]:.2f})"


def warnings_of(metrics: dict[str, Any]) -> list[str]:
    """What makes the run's numbers untrustworthy (``metrics["warnings"]``), said first
    everywhere: the terminal (prefixed ``WARNING:``), report.md and report.html."""
    found = metrics.get("warnings") or []
    return [str(w) for w in found] if isinstance(found, list) else [str(found)]


def retention_text(metrics: dict[str, Any]) -> str:
    """Retention as a percentage, and when it means nothing, why (``retention_note``)."""
    note = metrics.get("retention_note")
    return pct(metrics.get("retention")) + (f" ({note})" if note else "")


def findings(metrics: dict[str, Any]) -> list[str]:
    """Each comparison the run measured, in words that never call noise a gain or a loss."""
    from distill.evaluate.uncertainty import describe_difference

    differences = metrics.get("differences") or {}
    names = [("student_vs_baseline", "the student", "the baseline"),
             ("student_vs_teacher", "the student", "the teacher"),
             ("baseline_vs_teacher", "the baseline", "the teacher")]
    lines = [_sentence(describe_difference(differences[key], a, b))
             for key, a, b in names if key in differences]
    if metrics.get("gap_closed") is not None:
        lines.append(f"Gap closed by distillation: {pct(metrics['gap_closed'])} of the "
                     "teacher–baseline difference"
                     + (" (meaningless: the teacher is near chance)"
                        if metrics.get("teacher_near_chance") else ""))
    elif metrics.get("gap_closed_note"):
        lines.append(f"Gap closed: not reported ({metrics['gap_closed_note']})")
    return lines


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def latency_note(metrics: dict[str, Any], batch: int | None) -> str | None:
    """Why a model many times smaller is not as many times faster at batch 1: the share of
    each model's batch-1 call that is fixed cost, and what the deployed runtime changed."""
    teacher, student = metrics.get("teacher") or {}, metrics.get("student") or {}
    stages = metrics.get("stages") or []
    if batch is None or not teacher or not student:
        return None
    eager = stages[0] if stages else student  # the distilled student before any export
    shares = [(name, overhead(e, batch)) for name, e in
              (("the teacher", teacher), ("the student in PyTorch", eager))]
    if shares[0][1] is None or shares[1][1] is None:
        return None
    t, e = teacher.get("latency_ms_p50"), eager.get("latency_ms_p50")
    arithmetic = _div(teacher.get(f"latency_ms_p50_b{batch}"),
                      eager.get(f"latency_ms_p50_b{batch}"))
    text = (f"Parameters are not latency: the student has "
            f"{ratio(_div(teacher.get('params'), eager.get('params')))} fewer parameters, but "
            f"per sample at batch {batch} (mostly arithmetic) it is {ratio(arithmetic)} faster, "
            f"and at batch 1 in PyTorch {ratio(_div(t, e))}, where {pct(shares[0][1])} of the "
            f"teacher's time and {pct(shares[1][1])} of the student's is fixed cost per call "
            f"(framework overhead, estimated as 1 − per-sample time at batch {batch} ÷ batch-1 "
            "time).")
    if eager is not student:
        text += (f" After the pipeline's last stage it answers in "
                 f"{ms(student.get('latency_ms_p50'))}, {ratio(metrics.get('speedup'))} the "
                 "teacher's speed: the deployment runtime bought the rest.")
    return text


def _div(a: Any, b: Any) -> float | None:
    return a / b if _number(a) and _number(b) and b else None


def plain_summary(metrics: dict[str, Any]) -> str | None:
    """The run in a sentence: what the student gained, what it cost."""
    diff = (metrics.get("differences") or {}).get("student_vs_teacher")
    if metrics.get("teacher_near_chance"):
        return ("In short: no verdict. The teacher is at chance level on this data, so how much "
                "of its accuracy the student keeps says nothing; fix the teacher or the data "
                "first (see the warning).")
    if not _number(metrics.get("retention")) or not _number(metrics.get("speedup")):
        return None
    gain = (f"In short: the student has {ratio(metrics.get('compression'))} fewer parameters "
            f"and answers {ratio(metrics['speedup'])} faster at batch 1 than the teacher")
    if metrics.get("task") == "causal-lm":  # retention is a perplexity ratio, not accuracy
        speed = metrics.get("generation_speedup")
        generates = (f", generates {ratio(speed)} as many tokens per second"
                     if _number(speed) else "")
        return (f"{gain}{generates}; its held-out perplexity is "
                f"{metrics['student']['perplexity']:.2f} against the teacher's "
                f"{metrics['teacher']['perplexity']:.2f} (teacher ÷ student: "
                f"{pct(metrics['retention'])}).")
    cost = ("no measurable loss of accuracy" if diff is not None and not diff["measurable"]
            else f"{abs(100 * diff['difference']):.2f} points of accuracy" if diff is not None
            else f"{pct(1 - metrics['retention'])} of its accuracy")
    return f"{gain}, for {cost} (it keeps {pct(metrics['retention'])})."


def overhead(entry: dict[str, Any], batch: int) -> float | None:
    """The share of a batch-1 call that is fixed cost (framework overhead, not arithmetic):
    1 - (per-sample time at ``batch``) / (time at batch 1). Near 1: the model's size hardly
    matters to its batch-1 latency."""
    one, many = entry.get("latency_ms_p50"), entry.get(f"latency_ms_p50_b{batch}")
    if not (_number(one) and _number(many)) or one <= 0:
        return None
    return max(0.0, 1 - (many / batch) / one)


def machine_line(env: dict[str, Any]) -> str:
    """The CPU with its instruction sets (runs before they were recorded: machine, count)."""
    return env.get("cpu") or f"{env.get('machine', '?')} ({env.get('cpu_count', '?')} CPUs)"
