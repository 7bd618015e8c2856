"""``numpy``: arrays in a ``.npz`` (``x``/``y`` or ``inputs``/``labels``), or a pair of ``.npy``.

Arrays are read with ``allow_pickle=False`` always, so a file can never run code; object arrays
are refused. Features keep their shape: one row per sample, ``(N, features)`` for tables,
``(N, C, H, W)`` for images, and ``(N, H, W)`` gets a channel axis (one grey channel). They are
used as they are (cast to float32): normalise them before saving. ``check`` reads only the
arrays' headers and the labels.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distill.data.base import NO_LABEL, ArrayDataset, DatasetInfo
from distill.data.formats import DATA_FORMATS
from distill.data.formats.base import (
    DataCheck,
    DataError,
    DataFormat,
    LabelMap,
    LoadedData,
    SourceOptions,
    clean_labels,
    existing,
    split_by_class,
)

INPUT_KEYS = ("x", "inputs")
LABEL_KEYS = ("y", "labels")
NUMERIC_KINDS = "biuf"  # bool, int, unsigned, float


class NumpyOptions(SourceOptions):
    labels: Path | None = None  # labels .npy when ``path`` is a features .npy
    test_labels: Path | None = None  # labels .npy when ``test`` is a features .npy


@dataclass
class _Arrays:
    """Where one split's arrays live, and their headers."""

    where: str
    read_inputs: Any  # () -> np.ndarray
    shape: tuple[int, ...]
    labels: np.ndarray | None


def _header(stream: Any, where: str) -> tuple[tuple[int, ...], np.dtype]:
    fmt = np.lib.format
    try:
        version = fmt.read_magic(stream)
        reader = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _, dtype = reader(stream)
    except ValueError as err:
        raise DataError(f"{where} is not a NumPy array file: {err}") from None
    if dtype.hasobject:
        raise DataError(f"{where} holds Python objects (dtype {dtype}); distill reads numeric "
                        "arrays only, without pickle: save it with a numeric dtype, e.g. "
                        "x.astype('float32')")
    return tuple(shape), dtype


def _load(opening: Any, where: str) -> np.ndarray:
    try:
        return np.asarray(opening())
    except (ValueError, OSError, zipfile.BadZipFile) as err:
        raise DataError(f"{where} cannot be read: {err}") from None


def _open(path: Path, labels_path: Path | None, what: str, *, labeled: bool) -> _Arrays:
    """A split's arrays: headers checked, labels read (they are small)."""
    path = existing(path, what, folder=False)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        if labels_path is not None:
            raise DataError(f"{path} is a .npz, which holds its own labels; drop the labels "
                            "file option (it is for a features .npy)")
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as err:
            raise DataError(f"{what} {path} is not a readable .npz: {err}") from None
        with archive:
            keys = [n.removesuffix(".npy") for n in archive.namelist()]
            x_key = next((k for k in INPUT_KEYS if k in keys), None)
            y_key = next((k for k in LABEL_KEYS if k in keys), None)
            if x_key is None or (labeled and y_key is None):
                raise DataError(f"{what} {path} has arrays {keys}; expected 'x' and 'y' (or "
                                "'inputs' and 'labels')")
            headers = {}
            for key in (x_key, y_key) if labeled else (x_key,):
                with archive.open(f"{key}.npy") as stream:
                    headers[key] = _header(stream, f"{path} array {key!r}")
        shape, dtype = headers[x_key]
        where = f"{path} array {x_key!r}"

        def read_inputs() -> np.ndarray:
            with np.load(path, allow_pickle=False) as data:
                return data[x_key]

        labels = None
        if labeled:
            with np.load(path, allow_pickle=False) as data:
                labels = _load(lambda: data[y_key], f"{path} array {y_key!r}")
    elif suffix == ".npy":
        with path.open("rb") as stream:
            shape, dtype = _header(stream, str(path))
        where = str(path)

        def read_inputs() -> np.ndarray:
            return np.load(path, allow_pickle=False)

        labels = None
        if labeled:
            if labels_path is None:
                raise DataError(f"{what} {path} is a features .npy; give its labels .npy too "
                                "(labels= for path, test_labels= for test)")
            labels_path = existing(labels_path, "labels file", folder=False)
            with labels_path.open("rb") as stream:
                _header(stream, str(labels_path))
            labels = _load(lambda: np.load(labels_path, allow_pickle=False), str(labels_path))
    else:
        raise DataError(f"{what} {path}: expected a .npz or .npy file, got {suffix!r}")
    if dtype.kind not in NUMERIC_KINDS:
        raise DataError(f"{where} holds {dtype} values; features must be numbers")
    if len(shape) < 2:
        raise DataError(f"{where} has shape {shape}; expected one row per sample, "
                        "(samples, features...) ")
    if labels is not None:
        labels = _check_labels(labels, shape[0], where)
    return _Arrays(where, lambda: _load(read_inputs, where), shape, labels)


def _check_labels(labels: np.ndarray, count: int, where: str) -> np.ndarray:
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise DataError(f"the labels of {where} have shape {labels.shape}; expected one label "
                        "per sample (a 1-D array)")
    if len(labels) != count:
        raise DataError(f"{where} has {count} samples but {len(labels)} labels")
    return labels


def _sample_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (1, *shape[1:]) if len(shape) == 3 else tuple(shape[1:])


@dataclass
class _Prepared:
    train: _Arrays
    test: _Arrays | None  # None: split off train
    unlabeled: _Arrays | None
    label_map: LabelMap
    train_labels: np.ndarray
    test_labels: np.ndarray | None
    split: tuple[np.ndarray, np.ndarray] | None


def _prepare(options: NumpyOptions) -> _Prepared:
    train = _open(options.path, options.labels, "numpy file", labeled=True)
    raw = clean_labels(list(train.labels), f"labels of {train.where}",
                       lambda i: f"sample {i}")  # type: ignore[arg-type]
    label_map = LabelMap.from_train(raw, f"labels of {train.where}")
    train_labels = label_map.encode(raw, f"labels of {train.where}", lambda i: f"sample {i}")
    test = test_labels = split = None
    if options.test is not None:
        test = _open(options.test, options.test_labels, "test numpy file", labeled=True)
        if _sample_shape(test.shape) != _sample_shape(train.shape):
            raise DataError(f"{test.where} has samples of shape {test.shape[1:]}, the training "
                            f"data {train.shape[1:]}")
        test_raw = clean_labels(list(test.labels), f"labels of {test.where}",  # type: ignore
                                lambda i: f"sample {i}")
        test_labels = label_map.encode(test_raw, f"labels of {test.where}",
                                       lambda i: f"sample {i}")
    else:
        split = split_by_class(train_labels, options.test_fraction or 0.0, options.split_seed,
                               train.where)
    unlabeled = None
    if options.unlabeled is not None:
        unlabeled = _open(options.unlabeled, None, "unlabeled numpy file", labeled=False)
        if _sample_shape(unlabeled.shape) != _sample_shape(train.shape):
            raise DataError(f"{unlabeled.where} has samples of shape {unlabeled.shape[1:]}, "
                            f"the training data {train.shape[1:]}")
    return _Prepared(train, test, unlabeled, label_map, train_labels, test_labels, split)


def _inputs(arrays: _Arrays) -> torch.Tensor:
    values = arrays.read_inputs().astype(np.float32)
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        raise DataError(f"{arrays.where} holds {values[tuple(bad[0])]} at sample {bad[0][0]}; "
                        "inputs must be finite numbers")
    if values.ndim == 3:
        values = values[:, None]
    return torch.from_numpy(values)


@DATA_FORMATS.register("numpy", aliases=("npz", "npy", "arrays"))
class NumpyFormat(DataFormat):
    """NumPy arrays: a ``.npz`` with inputs and labels, or features/labels ``.npy`` files."""

    name = "numpy"
    Options = NumpyOptions

    @classmethod
    def check(cls, options: NumpyOptions) -> DataCheck:
        prepared = _prepare(options)
        shape = _sample_shape(prepared.train.shape)
        if prepared.split is not None:
            counts = {"train": len(prepared.split[0]), "test": len(prepared.split[1])}
        else:
            counts = {"train": prepared.train.shape[0],
                      "test": prepared.test.shape[0]}  # type: ignore[union-attr]
        if prepared.unlabeled is not None:
            counts["unlabeled"] = prepared.unlabeled.shape[0]
        kind = "image" if len(shape) == 3 else "tabular"
        return DataCheck(cls.name, kind, shape, prepared.label_map.class_names, counts)

    @classmethod
    def load(cls, options: NumpyOptions, tokenizer: Any = None) -> LoadedData:
        prepared = _prepare(options)
        names = prepared.label_map.class_names
        shape = _sample_shape(prepared.train.shape)
        stem = Path(options.path).stem

        def dataset(x: torch.Tensor, y: np.ndarray | None, split: str) -> ArrayDataset:
            labels = (torch.full((len(x),), NO_LABEL, dtype=torch.long) if y is None
                      else torch.from_numpy(y))
            return ArrayDataset(x, labels, DatasetInfo(f"{stem}/{split}", shape, len(names),
                                                       names))

        x = _inputs(prepared.train)
        if prepared.split is not None:
            train_idx, test_idx = prepared.split
            train = dataset(x[train_idx], prepared.train_labels[train_idx], "train")
            test = dataset(x[test_idx], prepared.train_labels[test_idx], "test")
        else:
            train = dataset(x, prepared.train_labels, "train")
            test = dataset(_inputs(prepared.test), prepared.test_labels,  # type: ignore[arg-type]
                           "test")
        unlabeled = (None if prepared.unlabeled is None
                     else dataset(_inputs(prepared.unlabeled), None, "unlabeled"))
        return LoadedData(train, test, unlabeled, names, None)
