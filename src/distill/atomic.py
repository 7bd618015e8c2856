"""Writes that complete or leave nothing: a crash never leaves a valid-looking half-file."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _publish(tmp: str | Path, mode: int) -> None:
    """Temporary files are private (0600); what we publish gets the usual umask-based mode."""
    os.chmod(tmp, mode & ~_umask())


def _sync(path: str | Path, folder: bool = False) -> None:
    """Flush a file (or a folder's entries) to the disk, so a rename never publishes data that
    a power cut could still lose. Folders cannot be opened for this everywhere (Windows):
    there it is skipped."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        if folder:
            return
        raise
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _publish(tmp, 0o666)
        os.replace(tmp, path)
        _sync(path.parent, folder=True)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")


def write_with(path: str | Path, writer: Callable[[Path], None]) -> None:
    """Let ``writer`` produce a file at a temporary path, then move it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        writer(Path(tmp))
        _sync(tmp)
        _publish(tmp, 0o666)
        os.replace(tmp, path)
        _sync(path.parent, folder=True)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def directory(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces ``path`` whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield tmp
        for inner in tmp.rglob("*"):  # some writers (safetensors) create private files
            _publish(inner, 0o777 if inner.is_dir() else 0o666)
        _publish(tmp, 0o777)
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
        _sync(path.parent, folder=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


TEMPORARY = re.compile(r"^\..+\.(tmp|old-\d+)$")


def remove_temporaries(folder: str | Path) -> list[Path]:
    """Delete what killed writes left in ``folder`` (its temporary files and folders, and old
    copies that a replaced folder left behind); the paths removed. Called before resuming."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for item in folder.iterdir():
        if not TEMPORARY.match(item.name):
            continue
        if item.is_dir() and not item.is_symlink():
            shutil.rmtree(item, ignore_errors=True)
        else:
            item.unlink(missing_ok=True)
        removed.append(item)
    return removed


def copy_tree(source: str | Path, path: str | Path) -> None:
    """Copy the folder ``source`` to ``path``, which appears whole or not at all."""
    with directory(path) as tmp:
        shutil.copytree(source, tmp, dirs_exist_ok=True)
