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
                     "teacher–baseline difference")
    elif metrics.get("gap_closed_note"):
        lines.append(f"Gap closed: not reported ({metrics['gap_closed_note']})")
    return lines


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def latency_note(metrics: dict[str, Any], batch: int | None) -> str | None:
    """Why a model many times smaller is not as many times faster at batch 1."""
    teacher, student = metrics.get("teacher") or {}, metrics.get("student") or {}
    if batch is None or not teacher or not student:
        return None
    t, s = overhead(teacher, batch), overhead(student, batch)
    one, many = teacher.get(f"latency_ms_p50_b{batch}"), student.get(f"latency_ms_p50_b{batch}")
    if t is None or s is None or not (_number(one) and _number(many)) or many <= 0:
        return None
    return (f"At batch 1, {pct(t)} of the teacher's latency and {pct(s)} of the student's is "
            f"fixed cost per call (framework overhead: 1 − per-sample time at batch {batch} ÷ "
            "batch-1 time), which shrinking the model does not remove; per sample at batch "
            f"{batch} the student is {one / many:.2f}× faster. A runtime with less overhead per "
            "call (ONNX Runtime: a [[stages]] export) is what buys batch-1 speed.")


def overhead(entry: dict[str, Any], batch: int) -> float | None:
    """The share of a batch-1 call that is fixed cost (framework overhead, not arithmetic):
    1 - (per-sample time at ``batch``) / (time at batch 1). Near 1: the model's size hardly
    matters to its batch-1 latency."""
    one, many = entry.get("latency_ms_p50"), entry.get(f"latency_ms_p50_b{batch}")
    if not (_number(one) and _number(many)) or one <= 0:
        return None
    return max(0.0, 1 - (many / batch) / one)
