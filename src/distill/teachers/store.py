"""The on-disk layout of a teacher-output cache: a manifest and checksummed ``.npy`` shards.

``manifest.json`` names the format, the fingerprint (teacher, data, settings), the row layout
and every finished shard with its row range, byte size and sha256. Shards are plain NumPy
``.npy`` files (a documented, pickle-free format that NumPy memory-maps natively), so reading a
batch's rows touches only those rows. Each shard file and then the manifest are replaced
atomically: an interrupted run leaves only whole shards that the manifest vouches for.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from distill import atomic

FORMAT = "distill.teacher-cache/1"
MANIFEST = "manifest.json"
DENSE_FIELDS = ("logits",)
TOPK_FIELDS = ("indices", "logits", "rest")


class CacheError(Exception):
    """A cache that cannot be used as it is: missing, incomplete, truncated or corrupt."""


class StaleCacheError(CacheError):
    """A cache built from a different teacher, different data or different settings."""


def sha256_of(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Shard:
    index: int
    start: int
    stop: int
    files: dict[str, dict[str, Any]]  # field -> {"file", "bytes", "sha256"}

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "start": self.start, "stop": self.stop, "files": self.files}

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> Shard:
        return cls(int(entry["index"]), int(entry["start"]), int(entry["stop"]),
                   dict(entry["files"]))


def shard_file(index: int, field: str) -> str:
    return f"shard-{index:05d}.{field}.npy"


def write_shard(folder: Path, index: int, start: int, arrays: dict[str, np.ndarray]) -> Shard:
    """Write one shard's arrays (each atomically) and return its manifest entry."""
    rows = {len(a) for a in arrays.values()}
    if len(rows) != 1:
        raise ValueError(f"shard arrays disagree on their row count: {sorted(rows)}")
    files = {}
    for field, array in arrays.items():
        name = shard_file(index, field)
        atomic.write_with(folder / name, lambda p, a=array: _save_npy(p, a))
        files[field] = {"file": name, "bytes": (folder / name).stat().st_size,
                        "sha256": sha256_of(folder / name)}
    return Shard(index, start, start + rows.pop(), files)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with path.open("wb") as f:
        np.save(f, np.ascontiguousarray(array), allow_pickle=False)


def verify_shard(folder: Path, shard: Shard, full: bool = True) -> None:
    """Raise :class:`CacheError` naming the file if it is missing, truncated or corrupt."""
    for field, meta in shard.files.items():
        path = folder / meta["file"]
        if not path.is_file():
            raise CacheError(f"{path}: shard {shard.index} ({field}) is missing")
        size = path.stat().st_size
        if size != meta["bytes"]:
            raise CacheError(
                f"{path}: shard {shard.index} ({field}) is truncated or overwritten: "
                f"{size} bytes on disk, {meta['bytes']} expected"
            )
        if full and sha256_of(path) != meta["sha256"]:
            raise CacheError(
                f"{path}: shard {shard.index} ({field}) is corrupt: its sha256 does not match "
                "the manifest"
            )


def open_shard(folder: Path, shard: Shard) -> dict[str, np.ndarray]:
    """Memory-map a shard's arrays (read-only): rows are read from disk when indexed."""
    arrays = {}
    for field, meta in shard.files.items():
        array = np.load(folder / meta["file"], mmap_mode="r", allow_pickle=False)
        if len(array) != shard.stop - shard.start:
            raise CacheError(
                f"{folder / meta['file']}: holds {len(array)} rows, the manifest says "
                f"{shard.stop - shard.start}"
            )
        arrays[field] = array
    return arrays


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        raise CacheError(f"{folder}: not a teacher cache (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise CacheError(f"{path}: unreadable manifest ({err})") from err
    if manifest.get("format") != FORMAT:
        raise CacheError(
            f"{path}: format {manifest.get('format')!r} is not {FORMAT!r}; rebuild the cache"
        )
    return manifest


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    atomic.write_json(folder / MANIFEST, manifest)


def shards_of(manifest: dict[str, Any]) -> list[Shard]:
    return [Shard.from_json(entry) for entry in manifest.get("shards", [])]
