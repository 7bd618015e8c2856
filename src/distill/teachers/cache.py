"""Run a teacher once over a dataset and keep its outputs on disk: dense or top-k, resumable.

Rows are keyed by sample index and written in fixed ranges (shard i holds rows
``[i * shard_rows, (i + 1) * shard_rows)``), so a run that stops part-way resumes at the first
row no finished shard holds: no row is computed twice into the cache, none is skipped. A run
killed after its last shard, before the manifest said so, is marked complete by the next call;
what killed writes left behind (``.NAME.XXXX.tmp``) is removed before resuming.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Subset, TensorDataset

from distill import atomic
from distill.batches import Batches, forward, to_device
from distill.teachers.cached import CachedTeacher
from distill.teachers.fingerprint import data_fingerprint, describe_changes, teacher_fingerprint
from distill.teachers.sampled import SAMPLERS
from distill.teachers.store import (
    FORMAT,
    MANIFEST,
    CacheError,
    StaleCacheError,
    human_bytes,
    layouts,
    read_manifest,
    shards_of,
    verify_shard,
    write_manifest,
    write_shard,
)
from distill.teachers.targets import TopKTargets

log = logging.getLogger(__name__)

DTYPES = {"float16": np.float16, "float32": np.float32}
BATCH_OUTPUT_BYTES = 512 << 20  # batch_size=None: one batch's float32 outputs at most this
MAX_AUTO_BATCH = 256
SHARD_BYTES = 64 << 20  # ~64 MiB per shard file: large enough to stream, small enough to redo
FLOAT16_MAX = float(np.finfo(np.float16).max)


def cache_teacher(
    teacher: Any,
    data: Any,
    path: str | Path,
    *,
    top_k: int | None = None,
    samples: int | None = None,
    temperature: float = 1.0,
    seed: int = 0,
    sampler: Literal["multinomial", "stratified"] = "stratified",
    dtype: Literal["float16", "float32"] = "float16",
    batch_size: int | None = None,
    shard_rows: int | None = None,
    device: str = "cpu",
    progress: bool | None = None,
    overwrite: bool = False,
    source: nn.Module | None = None,
) -> CachedTeacher:
    """Store ``teacher``'s outputs on every sample of ``data`` at ``path``; return the cache.

    ``top_k=None`` keeps dense logits; ``top_k=k`` keeps the k largest logits, their indices and
    the probability mass left over (a few bytes per row instead of the whole vocabulary);
    ``samples=n`` keeps n tokens drawn from the teacher at ``temperature`` and its entropy
    (:class:`~distill.teachers.sampled.SampledTargets`: an unbiased estimate of the forward KL),
    each row's draws seeded by ``seed`` and the row's index, so a resumed build draws what an
    uninterrupted one would; with ``top_k`` as well (hybrid), the k most likely tokens are kept
    exactly with their probabilities and the n draws come from the rest. ``sampler``:
    ``"stratified"`` (one draw per n-th of the cumulative distribution: unbiased, and far less
    noisy than independent draws at the same bytes; BENCHMARKS.md) or ``"multinomial"``.
    An existing complete cache with the same fingerprint is reused as it is; an interrupted
    one is resumed; one built from another teacher, other data or other settings is refused
    (``overwrite=True`` rebuilds it). ``teacher`` is an ``nn.Module`` or a teacher signal
    with ``logits()`` and ``fingerprint()``. ``batch_size=None`` takes as many rows a batch as
    keep its outputs under 512 MiB (measured on the first row), at most 256: a language
    model's logits are tens of MB a sequence, and 256 of them would not fit in memory.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be a positive integer or None, got {top_k}")
    if samples is not None and samples < 1:
        raise ValueError(f"samples must be a positive integer, got {samples}")
    if samples is not None and not (temperature > 0 and 0 <= seed < 1 << 63):
        raise ValueError(f"temperature must be > 0 and seed in [0, 2**63), got {temperature}, "
                         f"{seed}")
    if shard_rows is not None and shard_rows < 1:
        raise ValueError(f"shard_rows must be positive, got {shard_rows}")
    folder = Path(path)
    settings: dict[str, Any] = {"kind": "topk" if top_k else "dense", "top_k": top_k,
                                "dtype": dtype}
    if samples is not None:
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
        settings.update(kind="sampled", samples=samples, temperature=float(temperature),
                        seed=seed)  # with top_k: hybrid
        if sampler != "multinomial":  # caches from before samplers were a choice stay valid
            settings["sampler"] = sampler
    fingerprint = {
        "teacher": teacher_fingerprint(teacher),
        "data": data_fingerprint(data),
        "settings": settings,
    }
    from distill.engine import distributed

    group = distributed.current()
    with distributed.main_first():  # one process decides what is there and what is to do
        manifest = (_start_or_resume(folder, fingerprint, overwrite) if distributed.is_main()
                    else read_manifest(folder))
    if not manifest["complete"]:
        if shard_rows is not None and manifest["shard_rows"] is None:
            manifest["shard_rows"] = shard_rows
        from distill.hf.text import at_stored_length  # rows of one length, whatever the batch

        writer = _Writer(teacher, at_stored_length(data), folder, manifest, batch_size, device,
                         progress)
        if group is None:
            writer.run()
        else:
            writer.run_shared(*group.shard)
    return CachedTeacher(folder, source=source if source is not None else _module(teacher))



def _batch_for_row_bytes(row_bytes: int) -> int:
    rows = max(1, min(MAX_AUTO_BATCH, BATCH_OUTPUT_BYTES // max(row_bytes, 1)))
    log.info("caching %d rows a batch (%s of outputs a row)", rows, human_bytes(row_bytes))
    return rows


def _split_rows(pieces: list[np.ndarray], rows: int
                ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The first ``rows`` rows of consecutive ``pieces``, and the rest (views, no copies)."""
    first: list[np.ndarray] = []
    for i, piece in enumerate(pieces):
        if rows <= 0:
            return first, pieces[i:]
        if len(piece) <= rows:
            first.append(piece)
            rows -= len(piece)
        else:
            return first + [piece[:rows]], [piece[rows:], *pieces[i + 1:]]
    return first, []


def _module(teacher: Any) -> nn.Module | None:
    return teacher if isinstance(teacher, nn.Module) else None


def _start_or_resume(folder: Path, fingerprint: dict, overwrite: bool) -> dict[str, Any]:
    if _only_a_killed_first_manifest(folder):  # killed before the cache had a manifest at all
        atomic.remove_temporaries(folder)
    if (folder / MANIFEST).is_file() or (folder / MANIFEST).is_symlink():
        atomic.remove_temporaries(folder)  # what killed writes left behind
        try:
            manifest = read_manifest(folder)
        except CacheError as err:
            if not overwrite:
                raise CacheError(f"{err}\nPass overwrite=True (or --overwrite) to rebuild the "
                                 "cache, or use another folder") from None
            log.warning("%s; rebuilding the cache", err)
            manifest = None
        if manifest is not None:
            changes = describe_changes(manifest["fingerprint"], fingerprint)
            if changes and not overwrite:
                raise StaleCacheError(
                    f"{folder}: this cache was built differently: " + "; ".join(changes)
                    + ". Pass overwrite=True (or --overwrite) to rebuild it, or use another "
                    "folder"
                )
            if not changes:
                return _keep_valid_shards(folder, manifest)
        _remove_cache_files(folder)
    elif folder.exists() and any(folder.iterdir()):
        raise CacheError(
            f"{folder}: exists and is not a teacher cache (no {MANIFEST}); refusing to write "
            "into it"
        )
    from distill import __version__

    folder.mkdir(parents=True, exist_ok=True)
    manifest = {
        "format": FORMAT,
        "distill_version": __version__,
        "fingerprint": fingerprint,
        "complete": False,
        "shard_rows": None,
        "vocab_size": None,
        "row_shape": None,
        "shards": [],
    }
    write_manifest(folder, manifest)
    return manifest


def _keep_valid_shards(folder: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Keep the finished shards that still verify; redo the first damaged one and the rest.
    A run killed after writing its last shard but before marking the cache complete left every
    row on disk: that cache is marked complete here instead of being computed again."""
    kept = []
    layout = layouts(manifest) if manifest["shards"] else None
    for shard in shards_of(manifest):
        try:
            verify_shard(folder, shard, layout=layout)
        except CacheError as err:
            log.warning("%s; recomputing from row %d", err, shard.start)
            manifest["complete"] = False
            break
        kept.append(shard)
    changed = len(kept) < len(manifest["shards"])
    if changed:
        manifest["shards"] = [s.to_json() for s in kept]
    if not kept:  # nothing kept: the teacher's outputs define the row layout again
        changed = changed or manifest["vocab_size"] is not None
        manifest["vocab_size"] = manifest["row_shape"] = None
    rows = manifest["fingerprint"]["data"]["rows"]
    if not manifest["complete"] and kept and kept[-1].stop == rows:
        log.info("%s: every shard was written before the run stopped; marking it complete",
                 folder)
        manifest["complete"] = changed = True
    if changed:
        write_manifest(folder, manifest)  # only when something changed: reuse writes nothing
    return manifest


def _only_a_killed_first_manifest(folder: Path) -> bool:
    """Whether ``folder`` holds nothing but temporary copies of a first manifest."""
    if not folder.is_dir():
        return False
    items = list(folder.iterdir())
    return bool(items) and all(i.name.startswith(f".{MANIFEST}.") and i.name.endswith(".tmp")
                               and i.is_file() and not i.is_symlink() for i in items)


def _remove_cache_files(folder: Path) -> None:
    for item in folder.glob("shard-*.npy"):
        if item.is_symlink() or item.is_file():  # a link is removed, never what it points to
            item.unlink()
    (folder / MANIFEST).unlink(missing_ok=True)


def _rest_of(data: Any, start: int, stop: int | None = None) -> Any:
    """The samples from ``start`` (to ``stop``), in order (TensorDatasets stay fast)."""
    stop = len(data) if stop is None else stop
    if start == 0 and stop == len(data):
        return data
    if isinstance(data, TensorDataset):
        return TensorDataset(*(t[start:stop] for t in data.tensors))
    return Subset(data, range(start, stop))


class _Writer:
    """Streams teacher outputs into fixed-size shards, updating the manifest after each."""

    def __init__(self, teacher, data, folder: Path, manifest: dict, batch_size: int | None,
                 device: str, progress: bool | None):
        self.teacher, self.data, self.folder, self.manifest = teacher, data, folder, manifest
        self.batch_size, self.device, self.progress = batch_size, torch.device(device), progress
        settings = manifest["fingerprint"]["settings"]
        self.settings = settings
        self.top_k, self.dtype = settings["top_k"], DTYPES[settings["dtype"]]
        self.buffer: dict[str, list[np.ndarray]] = {}
        self.buffered = 0
        self.resumed = bool(manifest["shards"])  # the row layout then comes from the cache

    @property
    def done(self) -> int:
        shards = self.manifest["shards"]
        return shards[-1]["stop"] if shards else 0

    def run(self) -> None:
        from tqdm.auto import tqdm

        rows = len(self.data)
        module = _module(self.teacher)
        was_training = module is not None and module.training
        if module is not None:
            module.eval().to(self.device)
        bar = tqdm(total=rows, initial=self.done, desc="caching teacher outputs", unit="row",
                   leave=False, disable=False if self.progress else None if self.progress is None
                   else True)
        try:
            start = self.done
            with torch.no_grad():
                for i, (batch, offset) in enumerate(self._batches(start)):
                    inputs = to_device(batch.inputs, self.device)
                    if module is not None:
                        out = forward(module, inputs)
                    else:
                        out = self.teacher.logits(inputs, batch.indices + offset)
                    if self.batch_size is None:  # the first row alone tells the batch size
                        self.batch_size = _batch_for_row_bytes(out[0].numel() * 4)
                    arrays = self._arrays(out, self.done + self.buffered)
                    if i == 0:  # before anything is written: will it fit?
                        bar.set_postfix_str(self._check_disk(arrays, rows - start))
                    self._add(arrays)
                    bar.update(len(batch))
            self._flush(final=True)
        finally:
            bar.close()
            if was_training:
                module.train()
        self.manifest["complete"] = True
        write_manifest(self.folder, self.manifest)

    def _check_disk(self, arrays: dict[str, np.ndarray], rows: int) -> str:
        """The disk the ``rows`` still to write will take, from the first batch's; refused
        before anything is written when the disk has less free."""
        import shutil

        row_bytes = sum(a[0].nbytes for a in arrays.values())
        positions = int(np.prod(self.manifest["row_shape"] or [1]))
        need = row_bytes * rows
        free = shutil.disk_usage(self.folder).free
        estimate = (f"~{human_bytes(need)} on disk, {row_bytes / positions:,.0f} bytes per "
                    f"{'position' if positions > 1 else 'row'}")
        if need > free:
            raise CacheError(
                f"{self.folder}: caching {rows:,} more rows takes {estimate}, but the disk has "
                f"{human_bytes(free)} free; nothing more was written (free space, cache top-k or "
                "sampled targets, or fewer rows)")
        log.info("caching %d rows: %s", rows, estimate)
        return estimate

    def _batches(self, start: int) -> Iterator[tuple[Any, int]]:
        """Batches of the rows from ``start``, each with the index of the rows it was cut from.
        Without a batch size, row ``start`` goes first on its own: its outputs set the size
        (read when the next batch is cut)."""
        if self.batch_size is None and start < len(self.data):
            for batch in Batches(_rest_of(self.data, start, start + 1), 1, shuffle=False):
                yield batch, start
            start += 1
        for batch in Batches(_rest_of(self.data, start), self.batch_size or 1, shuffle=False):
            yield batch, start

    def run_shared(self, rank: int, world: int) -> None:
        """Under torch.distributed: the rows still missing, cut into shards that the ranks
        compute and write in turn (shard j by rank j mod world); rank 0 then lists them all
        in the manifest, so the cache reads as one. An interrupted shared build restarts from
        the shards the manifest lists."""
        import torch.distributed as dist

        module = _module(self.teacher)
        if module is not None:
            module.eval().to(self.device)
        start, rows = self.done, len(self.data)
        first = next(iter(Batches(_rest_of(self.data, 0, 1), 1, shuffle=False)))
        with torch.no_grad():
            out = self._outputs(module, first, 0)
            row = self._arrays(out, 0)
        if self.batch_size is None:
            self.batch_size = _batch_for_row_bytes(out[0].numel() * 4)
        if start < rows:  # every rank, before any writes: will the rest fit on the disk?
            self._check_disk(row, rows - start)
        if self.manifest["shard_rows"] is None:  # the same size on every rank: from row 0
            row_bytes = sum(a[0].nbytes for a in row.values())
            self.manifest["shard_rows"] = max(1, SHARD_BYTES // max(row_bytes, 1))
        size, first_index = self.manifest["shard_rows"], len(self.manifest["shards"])
        written = []
        for j in range(rank, -(-(rows - start) // size), world):
            lo = start + j * size
            hi = min(lo + size, rows)
            parts: dict[str, list[np.ndarray]] = {}
            with torch.no_grad():
                for batch in Batches(_rest_of(self.data, lo, hi), self.batch_size,
                                     shuffle=False):
                    out = self._outputs(module, batch, lo)
                    for field, array in self._arrays(out, lo + int(batch.indices[0])).items():
                        parts.setdefault(field, []).append(array)
            arrays = {k: np.concatenate(v) for k, v in parts.items()}
            written.append(write_shard(self.folder, first_index + j, lo, arrays).to_json())
        shapes = (self.manifest["vocab_size"], self.manifest["row_shape"])
        everyone: list[Any] = [None] * world
        dist.all_gather_object(everyone, (written, shapes))
        if rank == 0:
            entries = sorted((e for done, _ in everyone for e in done), key=lambda e: e["index"])
            self.manifest["shards"] += entries
            self.manifest["vocab_size"], self.manifest["row_shape"] = next(
                s for _, s in everyone if s[0] is not None)
            self.manifest["complete"] = True
            write_manifest(self.folder, self.manifest)
        dist.barrier()

    def _outputs(self, module, batch, offset: int):
        inputs = to_device(batch.inputs, self.device)
        if module is not None:
            return forward(module, inputs)
        return self.teacher.logits(inputs, batch.indices + offset)

    def _arrays(self, out: Tensor | TopKTargets, first_row: int) -> dict[str, np.ndarray]:
        if isinstance(out, TopKTargets):
            raise TypeError("caching a teacher that already gives top-k targets is not supported")
        out = out.detach().float().cpu()
        low, high = torch.aminmax(out)  # NaN propagates; one pass, no boolean copy
        if not (bool(torch.isfinite(low)) and bool(torch.isfinite(high))):
            raise ValueError(
                f"the teacher produced NaN or Inf outputs near row {self.done + self.buffered}; "
                "nothing from this batch was cached"
            )
        m = self.manifest
        if m["vocab_size"] is None:
            m["vocab_size"], m["row_shape"] = int(out.shape[-1]), list(out.shape[1:-1])
        elif [*out.shape[1:-1]] != m["row_shape"] or out.shape[-1] != m["vocab_size"]:
            if self.resumed:  # same teacher, other shape: the manifest's layout is wrong
                raise CacheError(
                    f"{self.folder / MANIFEST}: vocab_size, row_shape: the cache holds rows of "
                    f"{m['row_shape']} x {m['vocab_size']}, the teacher gives "
                    f"{list(out.shape[1:])}; pass overwrite=True to rebuild the cache"
                )
            raise ValueError(
                f"teacher outputs changed shape from (…, {m['row_shape']}, {m['vocab_size']}) "
                f"to {tuple(out.shape)}: every sample must give the same output shape"
            )
        if self.settings["kind"] == "sampled":
            return self._sampled(out, first_row)
        if self.top_k is None:
            arrays = {"logits": out}
        else:
            targets = TopKTargets.from_logits(out, min(self.top_k, out.shape[-1]))
            arrays = {"indices": targets.indices, "logits": targets.logits,
                      "rest": targets.rest}
        if self.top_k is not None:  # only the kept logits are stored
            low, high = torch.aminmax(arrays["logits"])
        if self.dtype is np.float16 and max(-float(low), float(high)) > FLOAT16_MAX:
            raise ValueError(
                f"teacher logits exceed float16's range ({FLOAT16_MAX:g}); cache with "
                "dtype='float32'"
            )
        torch_dtype = torch.float16 if self.dtype is np.float16 else torch.float32
        result = {k: (v.to(torch_dtype) if k == "logits" else v).numpy()  # torch converts
                  for k, v in arrays.items()}                             # faster than numpy
        if "indices" in result:  # 2 bytes per index for vocabularies up to 65,536
            index_type = np.uint16 if m["vocab_size"] <= 1 << 16 else np.int32
            result["indices"] = result["indices"].astype(index_type)
        return result

    def _sampled(self, out: Tensor, first_row: int) -> dict[str, np.ndarray]:
        """Each row's draws from a generator seeded by the cache's seed and the row's index."""
        from distill.teachers.sampled import SampledTargets

        n, temperature = self.settings["samples"], self.settings["temperature"]
        sampler = self.settings.get("sampler") or "multinomial"
        kept = min(self.top_k or 0, out.shape[-1] - 1)
        generators = [  # per row (a sequence at a time): its own seeded generator
            torch.Generator().manual_seed((self.settings["seed"] * 1_000_003 + first_row + r)
                                          % (1 << 63)) for r in range(len(out))]
        drawn = SampledTargets.from_logits_rows(out, n, temperature, top_k=kept, sampler=sampler,
                                                generators=generators)
        row = {"indices": drawn.indices, "entropy": drawn.entropy}
        if kept:  # the k probabilities and the mass the draws share
            row["probs"] = drawn.weights[..., :kept]
            row["rest"] = drawn.weights[..., kept:].sum(-1)
        index_type = np.uint16 if self.manifest["vocab_size"] <= 1 << 16 else np.int32
        arrays = {k: v.numpy() for k, v in row.items()}
        arrays["indices"] = arrays["indices"].astype(index_type)
        return {k: v if k == "indices" else v.astype(self.dtype) for k, v in arrays.items()}

    def _add(self, arrays: dict[str, np.ndarray]) -> None:
        m = self.manifest
        if m["shard_rows"] is None:
            row_bytes = sum(a[0].nbytes for a in arrays.values())
            m["shard_rows"] = max(1, SHARD_BYTES // max(row_bytes, 1))
        for field, array in arrays.items():
            self.buffer.setdefault(field, []).append(array)
        self.buffered += len(next(iter(arrays.values())))
        self._flush(final=False)

    def _flush(self, final: bool) -> None:
        size = self.manifest["shard_rows"]
        while self.buffered and (self.buffered >= size or final):
            take = min(size, self.buffered)
            split = {k: _split_rows(v, take) for k, v in self.buffer.items()}
            shard = write_shard(self.folder, len(self.manifest["shards"]), self.done,
                                {k: first for k, (first, _) in split.items()})
            self.manifest["shards"].append(shard.to_json())
            write_manifest(self.folder, self.manifest)
            self.buffer = {k: rest for k, (_, rest) in split.items()}
            self.buffered -= take

