"""A teacher signal read from a cache on disk: rows looked up by sample index, memory-mapped.

Opening a cache checks its manifest (:mod:`distill.teachers.manifest`), that it is complete,
that every shard matches its checksum and holds the dtype and shape the manifest says, and,
when given the teacher or the data, that it was built from them: a stale or damaged cache is
refused with the reason, never silently used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from distill.batches import Inputs
from distill.teachers.base import device_of, require_indices
from distill.teachers.fingerprint import data_fingerprint, describe_changes, teacher_fingerprint
from distill.teachers.sampled import SampledTargets
from distill.teachers.store import (
    CacheError,
    StaleCacheError,
    human_bytes,
    layouts,
    open_shard,
    read_manifest,
    shards_of,
)
from distill.teachers.targets import TopKTargets


class CachedTeacher:
    """Teacher outputs stored by :func:`distill.cache_teacher`, as a teacher signal.

    ``verify="full"`` (default) checks every shard's sha256 on opening; ``"size"`` only checks
    sizes (catches truncation, not bit rot) for very large caches. Pass ``teacher=`` and/or
    ``data=`` to check the cache was built from them. ``source`` is the teacher module itself,
    when at hand, for labeling held-out data (the cache only covers the rows it was built on).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        verify: Literal["full", "size"] = "full",
        teacher: Any = None,
        data: Any = None,
        source: nn.Module | None = None,
    ):
        self.path = Path(path)
        self.manifest = read_manifest(self.path)
        m = self.manifest
        if not m.get("complete"):
            done = m["shards"][-1]["stop"] if m.get("shards") else 0
            raise CacheError(
                f"{self.path}: incomplete cache ({done} of {m['fingerprint']['data']['rows']} "
                "rows); run cache_teacher (or `distill cache`) again with the same arguments "
                "to finish it"
            )
        if verify not in ("full", "size"):
            raise ValueError(f"verify must be 'full' or 'size', got {verify!r}")
        self.shards = shards_of(m)
        self._layout = layouts(m)
        self._arrays = [open_shard(self.path, shard, self._layout, full=verify == "full")
                        for shard in self.shards]
        self._check_fingerprint(teacher, data)
        self.source = source
        self.rows = int(m["fingerprint"]["data"]["rows"])
        self.shard_rows = int(m["shard_rows"])
        self.kind = m["fingerprint"]["settings"]["kind"]
        self.vocab_size = int(m["vocab_size"])

    def _check_fingerprint(self, teacher: Any, data: Any) -> None:
        stored = self.manifest["fingerprint"]
        current = dict(stored)
        if teacher is not None:
            current["teacher"] = teacher_fingerprint(teacher)
        if data is not None:
            current["data"] = data_fingerprint(data)
        changes = describe_changes(stored, current)
        if changes:
            raise StaleCacheError(f"{self.path}: stale cache: " + "; ".join(changes))

    def fingerprint(self) -> str:
        return str(self.manifest["fingerprint"]["teacher"])

    def stored_bytes(self) -> int:
        """Bytes of stored targets (without file headers): what the cache costs per row."""
        return sum(a.nbytes for shard in self._arrays for a in shard.values())

    def describe(self) -> str:
        """One line: rows, kind, shards, and what the targets cost per row and per position."""
        settings = self.manifest["fingerprint"]["settings"]
        kind = {"topk": f"top-{settings['top_k']}",
                "sampled": (f"top-{settings['top_k']} + " if settings["top_k"] else "")
                + f"sampled n={settings.get('samples')} T={settings.get('temperature')}",
                }.get(self.kind, "dense")
        files = sum(f.stat().st_size for f in self.path.glob("*.npy"))
        per_row = self.stored_bytes() / max(self.rows, 1)
        positions = int(np.prod(self.manifest.get("row_shape") or [1]))
        per_position = (f", {per_row / positions:,.1f} bytes per position ({positions} per row)"
                        if positions > 1 else "")
        return (f"{self.path}: {self.rows} rows, {kind} {settings['dtype']}, "
                f"{len(self.shards)} shard(s), {human_bytes(files)} on disk, "
                f"{per_row:,.1f} bytes per row{per_position}")

    def check_data(self, data: Any) -> None:
        """Refuse training data that cannot be the data the cache was built on."""
        if isinstance(data, torch.utils.data.DataLoader) or not hasattr(data, "__len__"):
            return
        if len(data) != self.rows:
            raise StaleCacheError(
                f"{self.path}: the cache holds {self.rows} rows but the training data has "
                f"{len(data)} samples; build the cache on this data"
            )

    def _gather(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        if indices.size and (indices.min() < 0 or indices.max() >= self.rows):
            bad = int(indices[(indices < 0) | (indices >= self.rows)][0])
            raise IndexError(
                f"{self.path}: sample index {bad} is outside the cache's {self.rows} rows"
            )
        shard_ids = indices // self.shard_rows
        first = self._arrays[0]
        out = {k: np.empty((len(indices), *a.shape[1:]), a.dtype) for k, a in first.items()}
        for shard_id in np.unique(shard_ids):
            where = shard_ids == shard_id
            local = indices[where] - self.shards[shard_id].start
            for field, array in self._arrays[shard_id].items():
                out[field][where] = self._checked(array[local], shard_id, field)
        return out

    def _checked(self, rows: np.ndarray, shard_id: int, field: str) -> np.ndarray:
        """Stored rows as read: never an index outside the vocabulary, never NaN or Inf (the
        writer stores neither), so damage that slipped past a size-only check stays an error."""
        what = "NaN or Inf"
        if field == "indices":
            what = "an index outside the vocabulary"
            bad = rows.size and (int(rows.min()) < 0 or int(rows.max()) >= self.vocab_size)
        elif field in ("probs", "rest") and self.kind == "sampled":  # hybrid: probabilities
            bad = not bool(((rows >= 0) & (rows <= 1)).all())  # NaN fails both
            what = "a probability outside [0, 1] (or NaN)"
        else:
            bad = not bool(np.isfinite(rows).all())
        if bad:
            file = self.shards[shard_id].files[field]["file"]
            raise CacheError(f"{self.path / file}: shard {shard_id} ({field}) holds {what}; "
                             "the cache is damaged, rebuild it")
        return rows

    def logits(self, inputs: Inputs, indices: Tensor | None = None
               ) -> Tensor | TopKTargets | SampledTargets:
        rows = self._gather(require_indices(indices, "cached").numpy().astype(np.int64))
        device = device_of(inputs)
        if self.kind == "dense":
            return torch.from_numpy(rows["logits"]).float().to(device)
        if self.kind == "sampled":
            settings = self.manifest["fingerprint"]["settings"]
            ids = torch.from_numpy(rows["indices"].astype(np.int64))
            entropy = torch.from_numpy(rows["entropy"]).float()
            temperature = float(settings["temperature"])
            if "probs" in rows:  # hybrid: the top k exactly, then the draws from the rest
                k = rows["probs"].shape[-1]
                return SampledTargets.hybrid(
                    ids[..., :k], torch.from_numpy(rows["probs"]).float(), ids[..., k:],
                    torch.from_numpy(rows["rest"]).float(), entropy, temperature,
                    self.vocab_size).to(device)
            return SampledTargets(ids, entropy, temperature, self.vocab_size).to(device)
        return TopKTargets(
            torch.from_numpy(rows["indices"].astype(np.int64)),
            torch.from_numpy(rows["logits"]).float(),
            torch.from_numpy(rows["rest"]).float(),
            self.vocab_size,
        ).to(device)

    def to(self, device: torch.device | str) -> CachedTeacher:
        if self.source is not None:
            self.source.to(device)
        return self

    def for_evaluation(self):
        from distill.teachers.online import OnlineTeacher

        return OnlineTeacher(self.source) if self.source is not None else None

    def __repr__(self) -> str:
        settings = self.manifest["fingerprint"]["settings"]
        k = (f", top_k={settings['top_k']}" if self.kind == "topk" else
             f", samples={settings['samples']}" if self.kind == "sampled" else "")
        if self.kind == "sampled" and settings["top_k"]:
            k += f", top_k={settings['top_k']}"
        return f"CachedTeacher({str(self.path)!r}, rows={self.rows}{k})"
