"""The on-disk layout of a teacher-output cache: a manifest and checksummed ``.npy`` shards.

``manifest.json`` names the format, the fingerprint (teacher, data, settings), the row layout
and every finished shard with its row range, byte size and sha256. Shards are plain NumPy
``.npy`` files (a documented, pickle-free format that NumPy memory-maps natively), so reading a
batch's rows touches only those rows. Each shard file and then the manifest are replaced
atomically: an interrupted run leaves only whole shards that the manifest vouches for.

Every file read here is untrusted data (see :mod:`distill.teachers.manifest`): a file is opened
only by a plain name inside the cache folder, never through a symbolic link, and its ``.npy``
header must agree with the manifest before it is mapped. Errors name the cache's own file and
say nothing about any file outside the cache.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from distill import atomic
from distill.teachers.manifest import (
    DENSE_FIELDS,
    FORMAT,
    MANIFEST,
    TOPK_FIELDS,
    CacheError,
    FieldLayout,
    StaleCacheError,
    layouts,
    parse,
    seal,
    shard_file,
)

__all__ = [
    "DENSE_FIELDS", "FORMAT", "MANIFEST", "TOPK_FIELDS", "CacheError", "Shard",
    "StaleCacheError", "human_bytes", "layouts", "open_inside", "open_shard", "read_manifest",
    "shard_file", "shards_of", "verify_shard", "write_manifest", "write_shard",
]

MAX_MANIFEST_BYTES = 64 << 20  # ~200,000 shards; a larger "manifest" is not one
_FLAGS = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
          | getattr(os, "O_BINARY", 0))


def sha256_of(path: Path | BinaryIO, chunk: int = 1 << 22) -> str:
    """sha256 of a file, by path or from an open file's current position."""
    if isinstance(path, Path):
        with path.open("rb") as f:
            return sha256_of(f, chunk)
    digest = hashlib.sha256()
    while block := path.read(chunk):
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


def write_shard(folder: Path, index: int, start: int,
                arrays: Mapping[str, np.ndarray | Sequence[np.ndarray]]) -> Shard:
    """Write one shard's arrays (each atomically) and return its manifest entry.

    A field may come as consecutive pieces (row blocks of one dtype and row shape): they are
    written one after another under one ``.npy`` header and hashed as they are written, so a
    shard of tens of MB is neither copied into one array first nor read back for its sha256."""
    pieces = {field: [value] if isinstance(value, np.ndarray) else list(value)
              for field, value in arrays.items()}
    rows = {sum(len(p) for p in parts) for parts in pieces.values()}
    if len(rows) != 1:
        raise ValueError(f"shard arrays disagree on their row count: {sorted(rows)}")
    files = {}
    for field, parts in pieces.items():
        name = shard_file(index, field)
        digest = hashlib.sha256()
        atomic.write_with(folder / name, lambda p, a=parts, d=digest: _save_npy(p, a, d))
        files[field] = {"file": name, "bytes": (folder / name).stat().st_size,
                        "sha256": digest.hexdigest()}
    return Shard(index, start, start + rows.pop(), files)


class _Hashing:
    """A file that hashes what is written to it."""

    def __init__(self, file: BinaryIO, digest: Any):
        self.file, self.digest = file, digest

    def write(self, data: Any) -> int:
        self.digest.update(data)
        return self.file.write(data)


def _save_npy(path: Path, parts: list[np.ndarray], digest: Any) -> None:
    """One ``.npy`` file (format 1.0, as ``np.save`` writes it) holding ``parts`` stacked."""
    first = parts[0]
    if any(p.dtype != first.dtype or p.shape[1:] != first.shape[1:] for p in parts):
        raise ValueError("a shard's pieces must share their dtype and row shape")
    header = {"descr": np.lib.format.dtype_to_descr(first.dtype), "fortran_order": False,
              "shape": (sum(len(p) for p in parts), *first.shape[1:])}
    with path.open("wb") as f:
        out = _Hashing(f, digest)
        np.lib.format.write_array_header_1_0(out, header)
        for part in parts:
            out.write(np.ascontiguousarray(part).data)


def _plain_name(name: Any) -> bool:
    return (isinstance(name, str) and name not in ("", ".", "..") and "\0" not in name
            and not any(sep in name for sep in ("/", "\\", os.sep, os.altsep or "/"))
            and not Path(name).is_absolute())


def open_inside(folder: Path, name: str, what: str) -> BinaryIO:
    """Open the file ``name`` of the cache ``folder`` for reading, refusing anything that could
    lead outside it: a name with separators or ``..``, a symbolic link, a non-regular file.
    Every refusal names ``folder / name`` only, so it says nothing about what lies outside."""
    if not _plain_name(name):
        raise CacheError(f"{folder}: {what}: {str(name)[:80]!r} is not a plain file name inside "
                         "the cache")
    path = folder / name
    try:
        if path.is_symlink():
            raise CacheError(f"{path}: {what} is a symbolic link; cache files must be regular "
                             "files inside the cache folder")
        fd = os.open(path, _FLAGS)  # O_NOFOLLOW: a link swapped in since is refused too
    except FileNotFoundError:
        raise CacheError(f"{path}: {what} is missing") from None
    except OSError as err:
        raise CacheError(f"{path}: {what} cannot be opened ({err.strerror})") from None
    f = os.fdopen(fd, "rb")
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise CacheError(f"{path}: {what} is not a regular file")
        if path.resolve().parent != folder.resolve():
            raise CacheError(f"{path}: {what} is not inside the cache folder")
    except BaseException:
        f.close()
        raise
    return f


def _check_file(folder: Path, shard: Shard, field: str, layout: FieldLayout | None,
                full: bool) -> tuple[BinaryIO, np.dtype, tuple[int, ...], int]:
    """Open one shard file and check it against the manifest: size, sha256 (when ``full``),
    then its ``.npy`` header (dtype, shape, data size) against ``layout``. Returns the open file,
    dtype, shape and data offset; the caller closes the file."""
    meta = shard.files[field]
    what = f"shard {shard.index} ({field})"
    f = open_inside(folder, meta["file"], what)
    path = folder / meta["file"]
    try:
        size = os.fstat(f.fileno()).st_size
        if size != meta["bytes"]:
            raise CacheError(f"{path}: {what} is truncated or overwritten: {size} bytes on "
                             f"disk, {meta['bytes']} expected")
        if full and sha256_of(f) != meta["sha256"]:
            raise CacheError(f"{path}: {what} is corrupt: its sha256 does not match the "
                             "manifest")
        f.seek(0)
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f".npy version {version} is not written by distill")
        except Exception as err:  # numpy's header parser raises ValueError, SyntaxError,
            # tokenize.TokenError, OSError... depending on what the bytes are; all mean the same
            raise CacheError(f"{path}: {what} is not a valid .npy file "
                             f"({str(err)[:120]})") from None
        rows = shard.stop - shard.start
        if layout is not None:
            expected = (rows, *layout.tail)
            if dtype not in layout.dtypes or fortran:
                allowed = " or ".join(str(d) for d in layout.dtypes)
                raise CacheError(f"{path}: {what} holds {dtype}{' (Fortran order)' * fortran}, "
                                 f"the manifest's settings need {allowed}")
            if tuple(shape) != expected:
                raise CacheError(f"{path}: {what} has shape {tuple(shape)}, the manifest says "
                                 f"{expected} (rows, row_shape, vocab_size or top_k)")
        elif not shape or shape[0] != rows:
            raise CacheError(f"{path}: holds {shape[0] if shape else 0} rows, the manifest "
                             f"says {rows}")
        offset = f.tell()
        if size != offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
            raise CacheError(f"{path}: {what} is {size} bytes; its .npy header describes "
                             f"{offset + int(np.prod(shape)) * dtype.itemsize}")
    except BaseException:
        f.close()
        raise
    return f, dtype, tuple(shape), offset


def verify_shard(folder: Path, shard: Shard, full: bool = True,
                 layout: dict[str, FieldLayout] | None = None) -> None:
    """Raise :class:`CacheError` naming the file if it is missing, truncated, corrupt, or (with
    ``layout``) holds arrays other than the manifest describes."""
    for field in shard.files:
        f, *_ = _check_file(folder, shard, field, None if layout is None else layout[field],
                            full)
        f.close()


def open_shard(folder: Path, shard: Shard, layout: dict[str, FieldLayout],
               full: bool = True) -> dict[str, np.ndarray]:
    """Check a shard (as :func:`verify_shard`) and memory-map its arrays read-only, from the
    very files that were checked: rows are read from disk when indexed."""
    arrays = {}
    for field in shard.files:
        f, dtype, shape, offset = _check_file(folder, shard, field, layout[field], full)
        with f:
            arrays[field] = np.memmap(f, dtype=dtype, mode="r", offset=offset, shape=shape)
    return arrays


def read_manifest(folder: Path) -> dict[str, Any]:
    """The cache's manifest, checked (:func:`distill.teachers.manifest.parse`) before use."""
    path = folder / MANIFEST
    if not path.is_file() and not path.is_symlink():
        raise CacheError(f"{folder}: not a teacher cache (no {MANIFEST})")
    with open_inside(folder, MANIFEST, "the manifest") as f:
        raw = f.read(MAX_MANIFEST_BYTES + 1)
    if len(raw) > MAX_MANIFEST_BYTES:
        raise CacheError(f"{path}: unreadable manifest (larger than {MAX_MANIFEST_BYTES} bytes)")
    return parse(raw, path)


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """Replace the manifest atomically, sealed with the checksum of its contents."""
    atomic.write_json(folder / MANIFEST, seal(manifest))


def shards_of(manifest: dict[str, Any]) -> list[Shard]:
    return [Shard.from_json(entry) for entry in manifest.get("shards", [])]


def human_bytes(size: float) -> str:
    """``123 bytes``, ``4.5 KiB``, ``6.7 MiB``, …"""
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:,.0f} {unit}" if unit == "bytes" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size:,.1f} TiB"
