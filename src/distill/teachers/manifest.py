"""The teacher-cache manifest as a checked format: a file read from disk is data, never trusted.

``manifest.json`` decides which files are opened and which rows a lookup returns, so a damaged
or hand-edited one must be refused, not followed. Reading it goes through four gates, each
raising :class:`CacheError` that names the manifest and the field:

1. strict JSON: no NaN/Infinity, no duplicate keys, a JSON object;
2. the ``format`` string, then the ``checksum`` (sha256 of the canonical JSON of every other
   key, written by :func:`seal`): catches any edit or damage that keeps the JSON readable;
3. the pydantic schema below: types (``strict``: no ``"5"``, ``5.0`` or ``true`` for an int),
   ranges, no unknown keys. pydantic rather than hand checks because the recipe schema already
   uses it: one declaration of the format, every problem reported at once with its location;
4. :func:`_layout_problems`: what a schema cannot say — the shards tile ``[0, rows)`` in order
   in fixed ranges, each with the fields its kind needs under their canonical file names.

A manifest without ``checksum`` was written before it existed; it is accepted when it passes
gates 3 and 4, because every shard is still checked against its own sha256 and refusing it would
force every existing cache to be rebuilt. Its next write (resume, repair) adds the checksum.

The checksum guards against accidents, not against someone who can rewrite the whole cache:
that person can recompute it. What the schema and the shard checks guarantee is that any
manifest which passes them describes files inside the cache whose shape, dtype and rows agree
with it, so a lookup can only ever return the stored rows it asks for, or an error.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

FORMAT = "distill.teacher-cache/1"
MANIFEST = "manifest.json"
DENSE_FIELDS = ("logits",)
TOPK_FIELDS = ("indices", "logits", "rest")
SAMPLED_FIELDS = ("indices", "entropy")
HYBRID_FIELDS = ("indices", "entropy", "probs", "rest")  # sampled with top_k: the k kept exactly
CACHE_DTYPES = ("float16", "float32")

MAX_ROWS = 1 << 40  # a trillion rows: beyond any dataset, far inside int64 offsets
MAX_VOCAB = (1 << 31) - 1  # the largest vocabulary int32 indices can address
MAX_BYTES = 1 << 48
MAX_DIM = 1 << 24  # one dimension of a row (sequence positions, channels)
MAX_DIMS = 8
MAX_TEXT = 1 << 20  # a teacher signal's own fingerprint() may be any string


class CacheError(Exception):
    """A cache that cannot be used as it is: missing, incomplete, truncated or corrupt."""


class StaleCacheError(CacheError):
    """A cache built from a different teacher, different data or different settings."""


def shard_file(index: int, field: str) -> str:
    """The one file name a shard's field may have (anything else in a manifest is refused)."""
    return f"shard-{index:05d}.{field}.npy"


Count = Annotated[int, Field(ge=0, le=MAX_ROWS)]
Positive = Annotated[int, Field(ge=1, le=MAX_ROWS)]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Text = Annotated[str, Field(max_length=MAX_TEXT)]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class ShardFile(_Strict):
    file: Text
    bytes: Annotated[int, Field(ge=0, le=MAX_BYTES)]
    sha256: Sha256


class ShardEntry(_Strict):
    index: Count
    start: Count
    stop: Count
    files: dict[Text, ShardFile]


class DataPrint(_Strict):
    rows: Count
    sha256: Sha256


class Settings(_Strict):
    kind: Literal["dense", "topk", "sampled"]
    top_k: Annotated[int, Field(ge=1, le=MAX_VOCAB)] | None
    dtype: Literal["float16", "float32"]
    # sampled targets only (absent from dense and top-k caches, as before they existed)
    samples: Annotated[int, Field(ge=1, le=1 << 16)] | None = None
    temperature: Annotated[float, Field(gt=0.0, le=1e6, allow_inf_nan=False)] | None = None
    seed: Annotated[int, Field(ge=0, le=(1 << 63) - 1)] | None = None
    sampler: Literal["multinomial", "stratified"] | None = None  # None: multinomial


class Fingerprint(_Strict):
    teacher: Text
    data: DataPrint
    settings: Settings


class Manifest(_Strict):
    format: Literal["distill.teacher-cache/1"]
    distill_version: Text
    fingerprint: Fingerprint
    complete: bool
    shard_rows: Positive | None
    vocab_size: Annotated[int, Field(ge=1, le=MAX_VOCAB)] | None
    row_shape: Annotated[list[Annotated[int, Field(ge=1, le=MAX_DIM)]],
                         Field(max_length=MAX_DIMS)] | None
    shards: list[ShardEntry]
    checksum: Sha256 | None = None


def checksum_of(manifest: dict[str, Any]) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces) of every key but ``checksum``."""
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def seal(manifest: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``manifest`` with its ``checksum``, as :func:`parse` expects it."""
    sealed = {k: v for k, v in manifest.items() if k != "checksum"}
    sealed["checksum"] = checksum_of(sealed)
    return sealed


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the key {key[:40]!r} appears twice")
        out[key] = value
    return out


def parse(raw: bytes, path: Path) -> dict[str, Any]:
    """The manifest held in ``raw`` (read from ``path``), checked through every gate above."""
    try:
        manifest = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant,
                              object_pairs_hook=_unique_keys)
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        raise CacheError(f"{path}: unreadable manifest ({str(err)[:200]})") from err
    if not isinstance(manifest, dict):
        raise CacheError(f"{path}: unreadable manifest (not a JSON object)")
    if manifest.get("format") != FORMAT:
        found = manifest.get("format")
        shown = repr(found)[:80] if isinstance(found, str | None) else type(found).__name__
        raise CacheError(f"{path}: format {shown} is not {FORMAT!r}; rebuild the cache")
    if "checksum" in manifest and manifest["checksum"] != checksum_of(manifest):
        raise CacheError(
            f"{path}: checksum: does not match the manifest's contents (it was edited or "
            "damaged); rebuild the cache"
        )
    try:
        checked = Manifest.model_validate(manifest)
    except ValidationError as err:
        problems = [f"{_where(e['loc'])}: {e['msg']}" for e in err.errors(include_input=False)]
        raise CacheError(_report(path, problems)) from None
    problems = _layout_problems(checked)
    if problems:
        raise CacheError(_report(path, problems))
    return manifest


def _where(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part)[:40] for part in loc) or "(top level)"


def _report(path: Path, problems: list[str]) -> str:
    shown = problems[:10] + ([f"… and {len(problems) - 10} more"] if len(problems) > 10 else [])
    return f"{path}: invalid manifest:\n  - " + "\n  - ".join(shown)


def fields_of(kind: str, top_k: int | None = None) -> tuple[str, ...]:
    if kind == "sampled" and top_k:
        return HYBRID_FIELDS
    return {"dense": DENSE_FIELDS, "topk": TOPK_FIELDS, "sampled": SAMPLED_FIELDS}[kind]


def _layout_problems(m: Manifest) -> list[str]:
    """What the schema cannot say: the shards tile the rows in order, in fixed ranges."""
    problems = []
    settings, rows = m.fingerprint.settings, m.fingerprint.data.rows
    if (settings.kind == "topk" and settings.top_k is None) or (
            settings.kind == "dense" and settings.top_k is not None):
        problems.append(f"fingerprint.settings.top_k: {settings.top_k} does not fit the kind "
                        f"{settings.kind!r}")
    sampling = (settings.samples, settings.temperature, settings.seed)
    if (settings.kind == "sampled") != all(v is not None for v in sampling) or (
            settings.kind != "sampled" and any(v is not None for v in sampling)):
        problems.append(f"fingerprint.settings: samples, temperature and seed go with the kind "
                        f"'sampled' (all three), not with {settings.kind!r}")
    if settings.sampler is not None and settings.kind != "sampled":
        problems.append(f"fingerprint.settings.sampler: goes with the kind 'sampled', not with "
                        f"{settings.kind!r}")
    if m.shards:
        for key in ("shard_rows", "vocab_size", "row_shape"):
            if getattr(m, key) is None:
                problems.append(f"{key}: missing (null) although shards are listed")
    if problems:
        return problems
    fields = set(fields_of(settings.kind, settings.top_k))
    stop = 0
    for i, shard in enumerate(m.shards):
        where = f"shards.{i}"
        if shard.index != i:
            problems.append(f"{where}.index: {shard.index}, expected {i} (shards in order)")
        if shard.start != stop:
            problems.append(f"{where}.start: {shard.start}, expected {stop} (the previous stop)")
        held = shard.stop - shard.start
        last = i == len(m.shards) - 1
        if held < 1 or (held != m.shard_rows if not last else held > m.shard_rows):
            problems.append(f"{where}.stop: {shard.stop} gives {held} rows; shard_rows is "
                            f"{m.shard_rows}" + ("" if last else " for every shard but the last"))
        if set(shard.files) != fields:
            problems.append(f"{where}.files: {sorted(shard.files)}, expected {sorted(fields)} "
                            f"for kind {settings.kind!r}")
        for field, meta in shard.files.items():
            if meta.file != shard_file(i, field):
                problems.append(f"{where}.files.{field[:40]}.file: {meta.file[:80]!r} is not "
                                f"{shard_file(i, field)!r}")
        stop = shard.stop
    if m.shards:
        last = m.shards[-1]
        if last.stop > rows:
            problems.append(f"shards.{len(m.shards) - 1}.stop: {last.stop} is past the "
                            f"{rows} rows of fingerprint.data.rows")
        elif last.stop - last.start < m.shard_rows and last.stop != rows:
            problems.append(f"shards.{len(m.shards) - 1}.stop: a short shard ends at row "
                            f"{last.stop}, before the {rows} rows of fingerprint.data.rows")
    if m.complete and stop != rows:
        problems.append(f"complete: true but the shards hold {stop} of {rows} rows")
    return problems


@dataclass(frozen=True)
class FieldLayout:
    """What one field's ``.npy`` must hold: one of ``dtypes``, shape ``(rows, *tail)``."""

    dtypes: tuple[np.dtype, ...]
    tail: tuple[int, ...]


def layouts(manifest: dict[str, Any]) -> dict[str, FieldLayout]:
    """The dtype and row shape of every field, from a manifest :func:`parse` accepted.

    Top-k indices are uint16 for vocabularies up to 65,536 or int32 (what caches written before
    uint16 used, and what larger vocabularies use); ``rest`` is always float32.
    """
    settings = manifest["fingerprint"]["settings"]
    vocab, row = manifest["vocab_size"], tuple(manifest["row_shape"] or ())
    values = (np.dtype(settings["dtype"]),)
    if settings["kind"] == "dense":
        return {"logits": FieldLayout(values, (*row, vocab))}
    index_types = (np.dtype(np.uint16),) if vocab <= 1 << 16 else ()
    if settings["kind"] == "sampled":
        kept = min(settings["top_k"] or 0, vocab - 1)
        fields = {"indices": FieldLayout((*index_types, np.dtype(np.int32)),
                                         (*row, kept + settings["samples"])),
                  "entropy": FieldLayout(values, row)}
        if kept:  # hybrid: the k most likely tokens' probabilities and the mass left to draw
            fields.update(probs=FieldLayout(values, (*row, kept)), rest=FieldLayout(values, row))
        return fields
    k = min(settings["top_k"], vocab)
    return {
        "indices": FieldLayout((*index_types, np.dtype(np.int32)), (*row, k)),
        "logits": FieldLayout(values, (*row, k)),
        "rest": FieldLayout((np.dtype(np.float32),), row),
    }
