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
