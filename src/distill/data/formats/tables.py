"""``table``: CSV, TSV, JSON Lines, JSON and Parquet files read through pyarrow.

One column holds the label; the inputs are either one text column (tokenized by the student's
tokenizer: a :class:`~distill.hf.text.TokenizedText`) or numeric feature columns (float32
features in an :class:`~distill.data.ArrayDataset`, standardized with the training split's mean
and std unless ``standardize=False``). Only the needed columns are read. Rows in messages are
counted from 1, the header not included.

The column logic works on any :class:`TableSource`, so ``hf-dataset`` reuses it for Hugging
Face datasets.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from distill.data.base import NO_LABEL, ArrayDataset, DatasetInfo
from distill.data.formats import DATA_FORMATS
from distill.data.formats.base import (
    DataCheck,
    DataError,
    DataFormat,
    LabelMap,
    LoadedData,
    RowName,
    SourceOptions,
    clean_labels,
    data_row,
    did_you_mean,
    existing,
    need_tokenizer,
    require,
    split_by_class,
    tokenized,
)

TABLE_KINDS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "json",
               ".parquet": "parquet", ".pq": "parquet"}


class ColumnOptions(BaseModel):
    """Which columns are the label and the inputs (text, or numeric features)."""

    model_config = ConfigDict(extra="forbid")

    label_column: str
    text_column: str | None = None
    feature_columns: list[str] | Literal["all-numeric"] | None = None
    standardize: bool = True
    max_length: int = Field(default=64, gt=0)

    @model_validator(mode="after")
    def _one_kind_of_input(self) -> ColumnOptions:
        if self.text_column is not None and self.feature_columns is not None:
            raise ValueError("give text_column or feature_columns, not both")
        if self.text_column is None and self.feature_columns is None:
            raise ValueError("give text_column (text classification) or feature_columns (a list "
                             "of numeric columns, or 'all-numeric')")
        if self.feature_columns == []:
            raise ValueError("feature_columns is empty; list the numeric columns or 'all-numeric'")
        if self.text_column is not None and "standardize" in self.model_fields_set:
            raise ValueError("standardize applies to feature_columns, not to text_column")
        if self.feature_columns is not None and "max_length" in self.model_fields_set:
            raise ValueError("max_length applies to text_column, not to feature_columns")
        return self


class TableOptions(ColumnOptions, SourceOptions):
    stream: bool | None = None
    """Read the files chunk by chunk into memory-mapped arrays in the cache instead of into
    memory (see :mod:`distill.data.formats.streamed`); by default, when the columns needed
    would take more than a quarter of this machine's memory."""


@dataclass
class TableSource:
    """A table to read columns from, and how to name it and its rows in messages."""

    where: str
    schema: Any  # a pyarrow Schema: the column names, and their types where known cheaply
    read: Callable[[list[str], list[str]], Any]  # (columns, columns to read as text) -> Table
    row_name: RowName = data_row
    label_names: tuple[str, ...] | None = None  # class names the source declares (ClassLabel)


def file_source(path: Path, what: str) -> TableSource:
    """A CSV / TSV / JSONL / JSON / Parquet file as a :class:`TableSource`."""
    path = existing(path, what, folder=False)
    kind = TABLE_KINDS.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"{what} {path}: unknown table type {path.suffix!r}; expected one of "
                        f"{', '.join(TABLE_KINDS)}")
    pa = require("pyarrow", "table")
    with arrow_errors(f"{path} ({kind})"):
        if kind in ("csv", "tsv"):
            return _csv_source(path, "\t" if kind == "tsv" else ",")
        if kind == "parquet":
            parquet = require("pyarrow.parquet", "table")
            return TableSource(str(path), parquet.read_schema(path),
                               lambda columns, _: parquet.read_table(path, columns=columns))
        if kind == "jsonl":
            table = require("pyarrow.json", "table").read_json(path)
        else:
            table = _json_array(path, pa)
        return TableSource(str(path), table.schema, lambda columns, _: table.select(columns))


def _csv_source(path: Path, delimiter: str) -> TableSource:
    pa, csv = require("pyarrow", "table"), require("pyarrow.csv", "table")
    parse = csv.ParseOptions(delimiter=delimiter)
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty; expected a header line and rows")
    with csv.open_csv(path, parse_options=parse) as reader:
        schema = reader.schema

    def read(columns: list[str], text_columns: list[str]) -> Any:
        convert = csv.ConvertOptions(include_columns=columns,
                                     column_types={c: pa.string() for c in text_columns})
        return csv.read_csv(path, parse_options=parse, convert_options=convert)

    return TableSource(str(path), schema, read)


def _json_array(path: Path, pa: Any) -> Any:
    """A ``.json`` file: one JSON array of row objects (or JSON Lines under that suffix)."""
    text = path.read_text(encoding="utf-8")
    if not text.lstrip().startswith("["):
        return require("pyarrow.json", "table").read_json(path)
    rows = json.loads(text)
    bad = next((i for i, row in enumerate(rows) if not isinstance(row, dict)), None)
    if bad is not None:
        raise DataError(f"{path}: item {bad + 1} of the JSON array is not an object of columns")
    return pa.Table.from_pylist(rows)


class arrow_errors:  # noqa: N801 - used like a function: `with arrow_errors(where):`
    """Turn pyarrow's and the parser's errors into one :class:`DataError` naming the file."""

    def __init__(self, where: str):
        self.where = where

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> bool:
        if error is None or isinstance(error, DataError | ImportError):
            return False
        import pyarrow as pa

        if isinstance(error, pa.ArrowException | OSError | ValueError | UnicodeDecodeError):
            raise DataError(f"{self.where}: cannot read it: {error}") from None
        return False


# ---------------------------------------------------------------------------------------------
# columns → arrays


@dataclass
class _Plan:
    label: str
    text: str | None
    features: list[str]


@dataclass
class _Part:
    """One split's columns as Python/numpy values."""

    labels: np.ndarray | None  # class indices
    features: np.ndarray | None  # float64 (n, features)
    texts: list[str] | None

    def __len__(self) -> int:
        return len(self.texts) if self.texts is not None else len(self.features)  # type: ignore

    def take(self, index: np.ndarray) -> _Part:
        return _Part(None if self.labels is None else self.labels[index],
                     None if self.features is None else self.features[index],
                     None if self.texts is None else [self.texts[i] for i in index])


def _require_column(source: TableSource, name: str, role: str) -> None:
    names = list(source.schema.names)
    if name not in names:
        raise DataError(f"{source.where}: no {role} column {name!r}{did_you_mean(name, names)}")


def _is_numeric(kind: Any) -> bool:
    import pyarrow as pa

    types = pa.types
    if types.is_dictionary(kind):
        kind = kind.value_type
    return (types.is_integer(kind) or types.is_floating(kind) or types.is_boolean(kind)
            or types.is_decimal(kind))


def _plan(options: ColumnOptions, source: TableSource) -> _Plan:
    _require_column(source, options.label_column, "label")
    if options.text_column is not None:
        _require_column(source, options.text_column, "text")
        return _Plan(options.label_column, options.text_column, [])
    if options.feature_columns == "all-numeric":
        features = [field.name for field in source.schema
                    if field.name != options.label_column and _is_numeric(field.type)]
        if not features:
            raise DataError(f"{source.where}: no numeric columns besides the label column "
                            f"{options.label_column!r} (columns: {', '.join(source.schema.names)})")
    else:
        features = list(options.feature_columns or [])
        for name in features:
            _require_column(source, name, "feature")
        if options.label_column in features:
            raise DataError(f"the label column {options.label_column!r} cannot also be a feature")
    return _Plan(options.label_column, None, features)


def _numbers(column: Any, name: str, source: TableSource) -> np.ndarray:
    """A numeric column as float64, or an error naming the column and the first bad row."""
    import pyarrow as pa

    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if not _is_numeric(column.type):
        values = column.to_pylist()
        row = next((i for i, v in enumerate(values) if v is not None and not _is_number(v)), 0)
        example = f": {values[row]!r} in {source.row_name(row)}" if values else ""
        raise DataError(
            f"{source.where}: feature column {name!r} is not numeric ({column.type}){example}; "
            "encode categories as numbers first, or read text with text_column"
        )
    if column.null_count:
        row = next(i for i, v in enumerate(column.to_pylist()) if v is None)
        raise DataError(f"{source.where}: feature column {name!r} has no value in "
                        f"{source.row_name(row)}")
    values = np.asarray(column.to_numpy(), dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        raise DataError(f"{source.where}: feature column {name!r} holds {values[bad[0]]} in "
                        f"{source.row_name(int(bad[0]))}; features must be finite numbers")
    return values


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _texts(column: Any, name: str, source: TableSource) -> list[str]:
    values = column.to_pylist()
    for i, value in enumerate(values):
        if not isinstance(value, str):
            what = "no value" if value is None else f"a {type(value).__name__} ({value!r})"
            raise DataError(f"{source.where}: text column {name!r} has {what} in "
                            f"{source.row_name(i)}; expected text")
    return values


def _read(source: TableSource, plan: _Plan, label_map: LabelMap | None, *, labeled: bool
          ) -> tuple[_Part, list[Any] | None]:
    """A split's columns; labels are encoded by ``label_map`` (or returned raw when None)."""
    inputs = [plan.text] if plan.text is not None else plan.features
    for name in inputs:
        _require_column(source, name, "text" if plan.text is not None else "feature")
    if labeled:
        _require_column(source, plan.label, "label")
    columns = ([plan.label] if labeled else []) + inputs
    with arrow_errors(source.where):
        table = source.read(columns, [plan.text] if plan.text is not None else [])
    if table.num_rows == 0:
        raise DataError(f"{source.where} has no rows")
    raw = labels = None
    if labeled:
        raw = clean_labels(table.column(plan.label).to_pylist(),
                           f"{source.where}, label column {plan.label!r}", source.row_name)
        if label_map is not None:
            labels = label_map.encode(raw, source.where, source.row_name)
    if plan.text is not None:
        return _Part(labels, None, _texts(table.column(plan.text), plan.text, source)), raw
    features = np.stack([_numbers(table.column(name), name, source) for name in plan.features],
                        axis=1)
    return _Part(labels, features, None), raw


@dataclass
class PreparedTable:
    """Train, test and unlabeled splits read, labelled and checked: what check and load share."""

    plan: _Plan
    label_map: LabelMap
    train: _Part
    test: _Part
    unlabeled: _Part | None

    def counts(self) -> dict[str, int]:
        counts = {"train": len(self.train), "test": len(self.test)}
        if self.unlabeled is not None:
            counts["unlabeled"] = len(self.unlabeled)
        return counts


def prepare_tables(options: ColumnOptions, train: TableSource, test: TableSource | None,
                   unlabeled: TableSource | None, *, test_fraction: float | None,
                   split_seed: int) -> PreparedTable:
    """Read and check every split; ``test=None`` splits ``test_fraction`` off ``train``."""
    plan = _plan(options, train)
    whole, raw = _read(train, plan, None, labeled=True)
    label_map = (LabelMap.from_names(train.label_names) if train.label_names
                 else LabelMap.from_train(raw or [], f"{train.where}, label column {plan.label!r}"))
    whole = replace(whole, labels=label_map.encode(raw or [], train.where, train.row_name))
    if test is not None:
        if train.label_names and test.label_names and test.label_names != train.label_names:
            raise DataError(f"{test.where} names its classes {list(test.label_names)}, but the "
                            f"training data {list(train.label_names)}")
        train_part, (test_part, _) = whole, _read(test, plan, label_map, labeled=True)
    else:
        if test_fraction is None:
            raise DataError(f"{train.where}: say where the test data comes from: test=<path> or "
                            "test_fraction=0.2")
        train_idx, test_idx = split_by_class(whole.labels, test_fraction, split_seed,
                                             train.where)
        train_part, test_part = whole.take(train_idx), whole.take(test_idx)
    extra = None if unlabeled is None else _read(unlabeled, plan, None, labeled=False)[0]
    return PreparedTable(plan, label_map, train_part, test_part, extra)


def check_tables(prepared: PreparedTable, format_name: str) -> DataCheck:
    if prepared.plan.text is not None:
        return DataCheck(format_name, "text", None, prepared.label_map.class_names,
                         prepared.counts())
    return DataCheck(format_name, "tabular", (len(prepared.plan.features),),
                     prepared.label_map.class_names, prepared.counts())


def load_tables(prepared: PreparedTable, options: ColumnOptions, tokenizer: Any, name: str,
                format_name: str) -> LoadedData:
    """The prepared splits as datasets: tokenized text, or float32 feature tensors."""
    names = prepared.label_map.class_names
    splits: dict[str, _Part | None] = {"train": prepared.train, "test": prepared.test,
                                       "unlabeled": prepared.unlabeled}
    if prepared.plan.text is not None:
        need_tokenizer(tokenizer, format_name)
        data = {split: None if part is None else tokenized(
            part.texts or [], part.labels, tokenizer, options.max_length, names, f"{name}/{split}")
            for split, part in splits.items()}
        preprocessing = {"kind": "text", "text_column": prepared.plan.text,
                         "max_length": options.max_length}
        return LoadedData(data["train"], data["test"], data["unlabeled"], names, preprocessing)
    train_x = prepared.train.features
    assert train_x is not None
    mean, std = np.zeros(train_x.shape[1]), np.ones(train_x.shape[1])
    if options.standardize:
        mean, std = train_x.mean(axis=0), train_x.std(axis=0)
        std[std < 1e-12] = 1.0  # a constant column stays constant (zero) instead of dividing by 0
    shape = (train_x.shape[1],)

    def dataset(part: _Part | None, split: str) -> ArrayDataset | None:
        if part is None:
            return None
        x = torch.from_numpy(((part.features - mean) / std).astype(np.float32))
        y = (torch.full((len(x),), NO_LABEL, dtype=torch.long) if part.labels is None
             else torch.from_numpy(part.labels))
        return ArrayDataset(x, y, DatasetInfo(f"{name}/{split}", shape, len(names), names))

    preprocessing = {"kind": "tabular", "feature_columns": list(prepared.plan.features),
                     "mean": mean.tolist() if options.standardize else None,
                     "std": std.tolist() if options.standardize else None}
    data = {split: dataset(part, split) for split, part in splits.items()}
    return LoadedData(data["train"], data["test"], data["unlabeled"], names, preprocessing)


def _sources(options: TableOptions) -> tuple[TableSource, TableSource | None, TableSource | None]:
    return (file_source(options.path, "table"),
            None if options.test is None else file_source(options.test, "test table"),
            None if options.unlabeled is None else file_source(options.unlabeled,
                                                               "unlabeled table"))


def _prepare(options: TableOptions) -> PreparedTable:
    return prepare_tables(options, *_sources(options), test_fraction=options.test_fraction,
                          split_seed=options.split_seed)


@DATA_FORMATS.register("table", aliases=("csv", "tsv", "jsonl", "parquet"))
class TableFormat(DataFormat):
    """A label column plus a text column or numeric feature columns, in CSV/TSV/JSONL/Parquet."""

    name = "table"
    Options = TableOptions

    @classmethod
    def reads_text(cls, options: Any) -> bool:
        return options.text_column is not None

    @classmethod
    def check(cls, options: TableOptions) -> DataCheck:
        from distill.data.formats import streamed

        if streamed.wants_stream(options):
            return streamed.check_streamed(options, cls.name)
        return check_tables(_prepare(options), cls.name)

    @classmethod
    def load(cls, options: TableOptions, tokenizer: Any = None) -> LoadedData:
        from distill.data.formats import streamed

        if options.text_column is not None:
            need_tokenizer(tokenizer, cls.name)  # before reading anything
        if streamed.wants_stream(options):
            return streamed.load_streamed(options, tokenizer, Path(options.path).stem, cls.name)
        return load_tables(_prepare(options), options, tokenizer, Path(options.path).stem,
                           cls.name)

