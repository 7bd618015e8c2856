"""``hf-dataset``: a Hugging Face ``datasets`` dataset, with the columns chosen as in ``table``.

``path`` may be a folder written by ``save_to_disk`` (a ``Dataset``, or a ``DatasetDict`` whose
``train_split`` / ``test_split`` are used), a local CSV / TSV / JSON(L) / Parquet file read by
``datasets.load_dataset``, or, when it is no local path, a hub name. A hub name fails at once
when ``HF_HUB_OFFLINE``/``HF_DATASETS_OFFLINE`` is set or the hub does not answer within a few
seconds, instead of retrying for minutes. A ``ClassLabel`` label column gives the class names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from distill.data.formats import DATA_FORMATS
from distill.data.formats.base import (
    DataCheck,
    DataError,
    DataFormat,
    LoadedData,
    MissingDataError,
    SourceOptions,
    did_you_mean,
    need_tokenizer,
    require,
)
from distill.data.formats.tables import (
    ColumnOptions,
    PreparedTable,
    TableSource,
    check_tables,
    load_tables,
    prepare_tables,
)
from distill.paths import cache_dir

SAVED_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")
FILE_BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json",
                 ".parquet": "parquet"}


class HFDatasetOptions(ColumnOptions, SourceOptions):
    label_column: str = "label"
    train_split: str = "train"
    test_split: str = "test"

    # a saved DatasetDict (or a hub dataset) brings its own test split
    test_may_come_from_source: ClassVar[bool] = True


def _looks_like_hub_name(text: str) -> bool:
    return (not text.startswith((".", "/", "~")) and text.count("/") <= 1
            and not Path(text).suffix and "\\" not in text)


def _from_hub(name: str, where: str) -> Any:
    """A hub dataset, failing fast offline (no minutes of retries)."""
    from distill.hf.hub import endpoint, unreachable_reason

    offline = unreachable_reason(("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))
    if offline is not None:
        raise DataError(f"{where} {name!r} is no local path, and the Hugging Face hub "
                        f"({endpoint()}) cannot be asked: {offline}; give a local folder or "
                        "file (datasets' save_to_disk)")
    datasets = require("datasets", "hf-dataset")
    return datasets.load_dataset(name, cache_dir=str(cache_dir() / "hf-datasets"))


def _open(path: Path, where: str) -> Any:
    """A ``Dataset`` or ``DatasetDict`` from a saved folder, a data file or the hub."""
    local = Path(path).expanduser()
    if not local.exists():
        if _looks_like_hub_name(str(path)):
            return _guarded(lambda: _from_hub(str(path), where), where, str(path))
        raise MissingDataError(f"{where} {local} does not exist")
    datasets = require("datasets", "hf-dataset")
    if local.is_dir():
        if not any((local / marker).is_file() for marker in SAVED_MARKERS):
            raise DataError(f"{where} {local} is not a folder written by save_to_disk (it has "
                            f"no {', '.join(SAVED_MARKERS)}); for files, give the file itself")
        return _guarded(lambda: datasets.load_from_disk(str(local)), where, local)
    builder = FILE_BUILDERS.get(local.suffix.lower())
    if builder is None:
        raise DataError(f"{where} {local}: unknown file type {local.suffix!r}; expected a "
                        f"save_to_disk folder or one of {', '.join(FILE_BUILDERS)}")
    extra = {"delimiter": "\t"} if local.suffix.lower() == ".tsv" else {}
    return _guarded(lambda: datasets.load_dataset(
        builder, data_files=str(local), split="train",
        cache_dir=str(cache_dir() / "hf-datasets"), **extra), where, local)


def _guarded(opening: Any, where: str, path: Any) -> Any:
    try:
        return opening()
    except (DataError, ImportError):
        raise
    except Exception as err:  # datasets raises many kinds; the user needs the file and why
        raise DataError(f"{where} {path}: datasets cannot open it: {err}") from None


def _split(data: Any, split: str, where: str, *, sole_ok: bool) -> Any:
    """``data[split]`` of a DatasetDict (or its only split when ``sole_ok``); a Dataset as is."""
    if not hasattr(data, "keys"):
        return data
    names = list(data.keys())
    if split in names:
        return data[split]
    if sole_ok and len(names) == 1:
        return data[names[0]]
    raise DataError(f"{where} has no split {split!r}{did_you_mean(split, names)}")


def _source(data: Any, where: str, label_column: str) -> TableSource:
    datasets = require("datasets", "hf-dataset")
    feature = data.features.get(label_column)
    names = (tuple(feature.names) if isinstance(feature, datasets.ClassLabel) else None)

    def read(columns: list[str], _: list[str]) -> Any:
        return data.select_columns(columns).with_format("arrow")[:]

    return TableSource(where, data.features.arrow_schema, read, label_names=names)


def _prepare(options: HFDatasetOptions) -> PreparedTable:
    where = f"hf-dataset {options.path}"
    source = _open(options.path, "hf-dataset")
    train = _split(source, options.train_split, where, sole_ok=False)
    test = None
    if options.test is not None:
        test_where = f"test hf-dataset {options.test}"
        test = _source(_split(_open(options.test, "test hf-dataset"), options.test_split,
                              test_where, sole_ok=True), f"{test_where}", options.label_column)
    elif options.test_fraction is None:
        if not hasattr(source, "keys"):
            raise DataError(f"{where} is a single dataset without a test split; give "
                            "test=<path> or test_fraction=0.2")
        test = _source(_split(source, options.test_split, where, sole_ok=False),
                       f"{where} [{options.test_split}]", options.label_column)
    unlabeled = None
    if options.unlabeled is not None:
        extra_where = f"unlabeled hf-dataset {options.unlabeled}"
        unlabeled = _source(_split(_open(options.unlabeled, "unlabeled hf-dataset"),
                                   options.train_split, extra_where, sole_ok=True),
                            extra_where, options.label_column)
    train_where = f"{where} [{options.train_split}]" if hasattr(source, "keys") else where
    return prepare_tables(options, _source(train, train_where, options.label_column), test,
                          unlabeled, test_fraction=options.test_fraction,
                          split_seed=options.split_seed)


@DATA_FORMATS.register("hf-dataset", aliases=("huggingface", "hf"))
class HFDatasetFormat(DataFormat):
    """A ``datasets`` dataset: saved with ``save_to_disk``, a data file, or a hub name."""

    name = "hf-dataset"
    Options = HFDatasetOptions

    @classmethod
    def reads_text(cls, options: Any) -> bool:
        return options.text_column is not None

    @classmethod
    def check(cls, options: HFDatasetOptions) -> DataCheck:
        return check_tables(_prepare(options), cls.name)

    @classmethod
    def load(cls, options: HFDatasetOptions, tokenizer: Any = None) -> LoadedData:
        if options.text_column is not None:
            need_tokenizer(tokenizer, cls.name)
        name = Path(str(options.path)).name or str(options.path)
        return load_tables(_prepare(options), options, tokenizer, name, cls.name)
