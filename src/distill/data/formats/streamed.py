"""Tables larger than memory: read in chunks into memory-mapped arrays kept in the cache.

``[data] format = "table"`` with ``stream = true`` (or, by default, when the columns a run needs
would take more than a quarter of this machine's memory) reads a CSV / TSV / JSON Lines /
Parquet file chunk by chunk through pyarrow's streaming readers: the label column first (the
classes and the train/test split need every label: 8 bytes a row), then the inputs, written
into one memory-mapped ``.npy`` array per split (float32 features standardized with the training
rows' mean and std, as in memory; or the tokenizer's ids and masks). The run's datasets are the
usual ArrayDataset / TokenizedText over those maps: the operating system pages rows in as
batches need them, so memory holds the labels and the pages in use, not the table.

The arrays live in ``<cache>/tables/<key>/`` (the key: the files' paths, sizes and modification
times, the options, the tokenizer's own definition) and the next run reuses them, so a large
text table is tokenized once. A folder is used only when its manifest says it is complete and
every array has the shape and type the manifest gives.

Why not ``datasets.load_dataset`` (which also memory-maps Arrow)? Its rows would still have to
become fixed-size tensors for the engine's indexed batches, and its cache conversion reports a
bad value without the row it sits in; pyarrow's readers give both in one pass.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distill.data.base import NO_LABEL, ArrayDataset, DatasetInfo
from distill.data.formats.base import (
    DataCheck,
    DataError,
    LabelMap,
    LoadedData,
    clean_labels,
    data_row,
    need_tokenizer,
    require,
    split_by_class,
)
from distill.data.formats.tables import (
    TABLE_KINDS,
    TableOptions,
    TableSource,
    _numbers,
    _plan,
    _texts,
    arrow_errors,
    file_source,
)

CHUNK_ROWS = 65_536
STREAM_SHARE = 0.25  # stream by default above this share of the machine's memory
SPLITS = ("train", "test", "unlabeled")


def physical_memory() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # not a POSIX system: assume 8 GiB
        return 8 << 30


def needed_bytes(path: Path, columns: list[str]) -> int:
    """About how much memory the columns take once read: a Parquet file's uncompressed size of
    those columns, any other file's size."""
    if TABLE_KINDS.get(path.suffix.lower()) != "parquet":
        return path.stat().st_size
    meta = require("pyarrow.parquet", "table").ParquetFile(path).metadata
    total = 0
    for group in range(meta.num_row_groups):
        row_group = meta.row_group(group)
        for j in range(row_group.num_columns):
            chunk = row_group.column(j)
            if chunk.path_in_schema in columns:
                total += chunk.total_uncompressed_size
    return total


def _paths(options: TableOptions) -> list[Path]:
    return [Path(p).expanduser() for p in (options.path, options.test, options.unlabeled)
            if p is not None]


def wants_stream(options: TableOptions) -> bool:
    """``stream`` as set, or whether the needed columns exceed a quarter of memory."""
    if options.stream is not None:
        return options.stream
    columns = [options.label_column, options.text_column or "", *(
        options.feature_columns if isinstance(options.feature_columns, list) else [])]
    try:
        total = sum(needed_bytes(p, columns) for p in _paths(options))
    except (OSError, ValueError):
        return False  # the in-memory reader names the problem
    return total > STREAM_SHARE * physical_memory()


def chunks(path: Path, columns: list[str], text_columns: list[str]) -> Iterator[Any]:
    """RecordBatches of ``columns`` in file order (text columns read as strings)."""
    pa = require("pyarrow", "table")
    kind = TABLE_KINDS.get(path.suffix.lower())
    if kind in ("csv", "tsv"):
        csv = require("pyarrow.csv", "table")
        reader = csv.open_csv(
            path, read_options=csv.ReadOptions(block_size=1 << 22),
            parse_options=csv.ParseOptions(delimiter="\t" if kind == "tsv" else ","),
            convert_options=csv.ConvertOptions(
                include_columns=columns, column_types={c: pa.string() for c in text_columns}))
        yield from reader
    elif kind == "parquet":
        parquet = require("pyarrow.parquet", "table")
        yield from parquet.ParquetFile(path).iter_batches(batch_size=CHUNK_ROWS, columns=columns)
    elif kind == "jsonl":
        pajson = require("pyarrow.json", "table")
        for batch in pajson.open_json(path, read_options=pajson.ReadOptions(block_size=1 << 22)):
            yield batch.select(columns)
    else:
        raise DataError(f"{path}: a {path.suffix} file is read whole; to stream it, write it as "
                        "JSON Lines (.jsonl), CSV or Parquet, or set stream = false")


@dataclass
class _File:
    """One source file, and where each of its rows goes: a split and a position in it."""

    path: Path
    source: TableSource
    labeled: bool
    split: np.ndarray | None = None  # int8 index into SPLITS per row
    position: np.ndarray | None = None  # int64 per row
    labels: np.ndarray | None = None  # class indices per row (labeled files)

    def batches(self, columns: list[str], text_columns: list[str]
                ) -> Iterator[tuple[int, Any, TableSource]]:
        """(first row, batch, a source that names rows from the file's start)."""
        offset = 0
        with arrow_errors(self.source.where):
            for batch in chunks(self.path, columns, text_columns):
                start = offset
                yield start, batch, replace(self.source,
                                            row_name=lambda i, at=start: data_row(at + i))
                offset += batch.num_rows


def _raw_labels(file: _File, column: str) -> tuple[list[Any], set[Any]]:
    """The label column as Arrow chunks (compact), checked row by row, and its distinct
    values."""
    kept, distinct = [], set()
    for _, batch, source in file.batches([column], []):
        values = batch.column(0)
        distinct.update(clean_labels(values.to_pylist(), f"{source.where}, label column "
                                     f"{column!r}", source.row_name))
        kept.append(values)
    return kept, distinct


def _encode(file: _File, kept: list[Any], column: str, label_map: LabelMap) -> np.ndarray:
    out, offset = [], 0
    for values in kept:
        def name(i: int, start: int = offset) -> str:
            return data_row(start + i)
        where = f"{file.source.where}, label column {column!r}"
        out.append(label_map.encode(clean_labels(values.to_pylist(), where, name), where, name))
        offset += len(values)
    if not out:
        raise DataError(f"{file.source.where} has no rows")
    return np.concatenate(out)


def _route(files: dict[str, _File], options: TableOptions) -> LabelMap:
    """Read every label, number the classes, split train/test: each row's destination."""
    train = files["train"]
    kept, distinct = _raw_labels(train, options.label_column)
    label_map = LabelMap.from_train(distinct, f"{train.source.where}, label column "
                                    f"{options.label_column!r}")
    train.labels = _encode(train, kept, options.label_column, label_map)
    del kept
    n = len(train.labels)
    train.split, train.position = np.zeros(n, np.int8), np.arange(n, dtype=np.int64)
    if "test" in files:
        test = files["test"]
        test.labels = _encode(test, _raw_labels(test, options.label_column)[0],
                              options.label_column, label_map)
        test.split = np.full(len(test.labels), 1, np.int8)
        test.position = np.arange(len(test.labels), dtype=np.int64)
    else:
        if options.test_fraction is None:
            raise DataError(f"{train.source.where}: say where the test data comes from: "
                            "test=<path> or test_fraction=0.2")
        train_rows, test_rows = split_by_class(train.labels, options.test_fraction,
                                               options.split_seed, train.source.where)
        train.split[test_rows] = 1
        train.position[train_rows] = np.arange(len(train_rows))
        train.position[test_rows] = np.arange(len(test_rows))
    return label_map


def _count_rows(file: _File, column: str) -> None:
    """An unlabeled file: every row goes to the unlabeled split."""
    n = sum(batch.num_rows for _, batch, _ in file.batches([column], []))
    if n == 0:
        raise DataError(f"{file.source.where} has no rows")
    file.split, file.position = np.full(n, 2, np.int8), np.arange(n, dtype=np.int64)


def _sizes(files: dict[str, _File]) -> dict[str, int]:
    sizes = dict.fromkeys(SPLITS, 0)
    for file in files.values():
        assert file.split is not None
        for index, name in enumerate(SPLITS):
            sizes[name] += int((file.split == index).sum())
    return {k: v for k, v in sizes.items() if v or k != "unlabeled"}


class _Arrays:
    """Memory-mapped ``.npy`` arrays, one per split and field, created on first write."""

    def __init__(self, folder: Path | None, sizes: dict[str, int]):
        self.folder, self.sizes, self.maps = folder, sizes, {}

    def write(self, field: str, split: np.ndarray, position: np.ndarray,
              values: np.ndarray) -> None:
        if self.folder is None:
            return  # a check: nothing is kept
        for index, name in enumerate(SPLITS):
            rows = split == index
            if not rows.any():
                continue
            key = f"{name}-{field}"
            if key not in self.maps:
                self.maps[key] = np.lib.format.open_memmap(
                    self.folder / f"{key}.npy", mode="w+", dtype=values.dtype,
                    shape=(self.sizes[name], *values.shape[1:]))
            self.maps[key][position[rows]] = values[rows]

    def flush(self) -> dict[str, Any]:
        for array in self.maps.values():
            array.flush()
        return {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in self.maps.items()}


def _feature_stats(files: dict[str, _File], features: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of the training rows, merged chunk by chunk (Chan et al.'s update)."""
    count, mean, m2 = 0, np.zeros(len(features)), np.zeros(len(features))
    for file in files.values():
        assert file.split is not None
        for start, batch, source in file.batches(features, []):
            x = _chunk_features(batch, features, source)[file.split[start:start + len(batch)] == 0]
            if not len(x):
                continue
            n_b, mean_b = len(x), x.mean(axis=0)
            m2_b = ((x - mean_b) ** 2).sum(axis=0)
            delta, total = mean_b - mean, count + n_b
            mean = mean + delta * n_b / total
            m2 = m2 + m2_b + delta ** 2 * count * n_b / total
            count = total
    std = np.sqrt(m2 / max(count, 1))
    std[std < 1e-12] = 1.0  # as in memory: a constant column stays constant
    return mean, std


def _chunk_features(batch: Any, features: list[str], source: TableSource) -> np.ndarray:
    return np.stack([_numbers(batch.column(j), name, source) for j, name in enumerate(features)],
                    axis=1)


def _write_inputs(files: dict[str, _File], options: TableOptions, arrays: _Arrays,
                  tokenizer: Any) -> dict[str, Any]:
    """The inputs pass: checked chunk by chunk, written (unless checking) where rows go."""
    plan = _plan(options, files["train"].source)
    if plan.text is not None:
        for file in files.values():
            assert file.split is not None and file.position is not None
            for start, batch, source in file.batches([plan.text], [plan.text]):
                texts = _texts(batch.column(0), plan.text, source)
                rows = slice(start, start + len(texts))
                if tokenizer is not None and arrays.folder is not None:
                    encoded = tokenizer(texts, padding="max_length", truncation=True,
                                        max_length=options.max_length, return_tensors="np")
                    for key, values in encoded.items():
                        arrays.write(key, file.split[rows], file.position[rows],
                                     np.asarray(values, dtype=np.int64))
        return {"kind": "text", "text_column": plan.text, "max_length": options.max_length}
    mean, std = np.zeros(len(plan.features)), np.ones(len(plan.features))
    if options.standardize:
        mean, std = _feature_stats(files, plan.features)
    if arrays.folder is not None or not options.standardize:  # checking: the stats pass read all
        for file in files.values():
            assert file.split is not None and file.position is not None
            for start, batch, source in file.batches(plan.features, []):
                x = ((_chunk_features(batch, plan.features, source) - mean) / std)
                rows = slice(start, start + len(x))
                arrays.write("features", file.split[rows], file.position[rows],
                             x.astype(np.float32))
    return {"kind": "tabular", "feature_columns": list(plan.features),
            "mean": mean.tolist() if options.standardize else None,
            "std": std.tolist() if options.standardize else None}


def _files(options: TableOptions) -> dict[str, _File]:
    files = {"train": _File(Path(options.path).expanduser(), file_source(options.path, "table"),
                            True)}
    if options.test is not None:
        files["test"] = _File(Path(options.test).expanduser(),
                              file_source(options.test, "test table"), True)
    if options.unlabeled is not None:
        files["unlabeled"] = _File(Path(options.unlabeled).expanduser(),
                                   file_source(options.unlabeled, "unlabeled table"), False)
    return files


def _read(options: TableOptions, tokenizer: Any, folder: Path | None) -> dict[str, Any]:
    """Both passes; returns the manifest (what a reuse needs besides the arrays)."""
    files = _files(options)
    plan = _plan(options, files["train"].source)  # the columns exist, before any pass
    label_map = _route(files, options)
    if "unlabeled" in files:
        _count_rows(files["unlabeled"], plan.text or plan.features[0])
    sizes = _sizes(files)
    arrays = _Arrays(folder, sizes)
    preprocessing = _write_inputs(files, options, arrays, tokenizer)
    if folder is not None:
        for name, index in (("train", 0), ("test", 1)):
            labels = np.concatenate([f.labels[f.split == index] for f in files.values()
                                     if f.labels is not None and f.split is not None])
            order = np.concatenate([f.position[f.split == index] for f in files.values()
                                    if f.labels is not None and f.position is not None])
            ordered = np.empty_like(labels)
            ordered[order] = labels
            np.save(folder / f"{name}-labels.npy", ordered)
    return {"complete": True, "arrays": arrays.flush(), "counts": sizes,
            "class_names": list(label_map.class_names), "preprocessing": preprocessing}


def check_streamed(options: TableOptions, format_name: str) -> DataCheck:
    """Every row read and checked chunk by chunk, nothing kept."""
    manifest = _read(options, None, None)
    names = tuple(manifest["class_names"])
    preprocessing = manifest["preprocessing"]
    if preprocessing["kind"] == "text":
        return DataCheck(format_name, "text", None, names, manifest["counts"])
    return DataCheck(format_name, "tabular", (len(preprocessing["feature_columns"]),), names,
                     manifest["counts"])


def _tokenizer_fingerprint(tokenizer: Any) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    text = backend.to_str() if backend is not None else json.dumps(
        sorted(tokenizer.get_vocab().items()))
    return hashlib.sha256(text.encode()).hexdigest()


def _cache_folder(options: TableOptions, tokenizer: Any) -> Path:
    from distill.paths import cache_dir

    files = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in _paths(options)]
    key = json.dumps({"version": 1, "options": options.model_dump(mode="json"), "files": files,
                      "tokenizer": None if tokenizer is None else
                      _tokenizer_fingerprint(tokenizer)}, sort_keys=True)
    return cache_dir() / "tables" / hashlib.sha256(key.encode()).hexdigest()[:20]


def _mapped(folder: Path, manifest: dict[str, Any]) -> dict[str, np.ndarray] | None:
    """The manifest's arrays, memory-mapped read-only, or None if any does not match it."""
    out = {}
    try:
        for key, spec in manifest["arrays"].items():
            if not re.fullmatch(r"(train|test|unlabeled)-[a-z_]{1,40}", str(key)):
                return None  # a name this module never writes: never a path to follow
            array = np.load(folder / f"{key}.npy", mmap_mode="r", allow_pickle=False)
            if list(array.shape) != spec["shape"] or str(array.dtype) != spec["dtype"]:
                return None
            out[key] = array
        for name in ("train", "test"):
            labels = np.load(folder / f"{name}-labels.npy", mmap_mode="r", allow_pickle=False)
            if labels.shape != (manifest["counts"][name],) or labels.dtype != np.int64:
                return None
            out[f"{name}-labels"] = np.array(labels)  # small: in memory
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return out


def _build(options: TableOptions, tokenizer: Any, folder: Path) -> None:
    partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        manifest = _read(options, tokenizer, partial)
        (partial / "manifest.json").write_text(json.dumps(manifest))
        shutil.rmtree(folder, ignore_errors=True)  # an incomplete or mismatched folder
        os.replace(partial, folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _tensor(array: np.ndarray) -> torch.Tensor:
    """A tensor over a read-only map: nothing writes inputs in place, and a batch is a copy."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(array)


def load_streamed(options: TableOptions, tokenizer: Any, name: str,
                  format_name: str) -> LoadedData:
    """The splits as datasets over memory-mapped arrays (built on first use, then reused)."""
    if options.text_column is not None:
        need_tokenizer(tokenizer, format_name)
    folder = _cache_folder(options, tokenizer)
    arrays = manifest = None
    with contextlib.suppress(OSError, ValueError):
        manifest = json.loads((folder / "manifest.json").read_text())
        arrays = _mapped(folder, manifest) if manifest.get("complete") is True else None
    if arrays is None:
        _build(options, tokenizer, folder)
        manifest = json.loads((folder / "manifest.json").read_text())
        arrays = _mapped(folder, manifest)
        if arrays is None:
            raise DataError(f"{folder}: the arrays just written do not match their manifest")
    assert manifest is not None
    names = tuple(manifest["class_names"])
    preprocessing = manifest["preprocessing"]
    datasets: dict[str, Any] = {}
    for split in ("train", "test", "unlabeled"):
        count = manifest["counts"].get(split, 0)
        if split == "unlabeled" and not count:
            datasets[split] = None
            continue
        labels = (torch.full((count,), NO_LABEL, dtype=torch.long) if split == "unlabeled"
                  else torch.from_numpy(arrays[f"{split}-labels"]))
        if preprocessing["kind"] == "text":
            from distill.hf.text import TokenizedText

            fields = {k.split("-", 1)[1]: _tensor(v) for k, v in arrays.items()
                      if k.startswith(f"{split}-") and not k.endswith("-labels")}
            info = DatasetInfo(f"{name}/{split}", (options.max_length,), len(names), names)
            datasets[split] = TokenizedText(fields, None if split == "unlabeled" else labels,
                                            info)
        else:
            x = _tensor(arrays[f"{split}-features"])
            info = DatasetInfo(f"{name}/{split}", (x.shape[1],), len(names), names)
            datasets[split] = ArrayDataset(x, labels, info)
    return LoadedData(datasets["train"], datasets["test"], datasets["unlabeled"], names,
                      preprocessing)
