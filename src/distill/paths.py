"""Where distill keeps what it reuses across runs (datasets, trained teachers)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$DISTILL_CACHE``, else ``$XDG_CACHE_HOME/distill``, else ``~/.cache/distill``."""
    if os.environ.get("DISTILL_CACHE"):
        return Path(os.environ["DISTILL_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "distill"
