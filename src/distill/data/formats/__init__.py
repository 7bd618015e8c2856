"""Users' own data: a registry of data formats, and one call to check or load any of them.

``load_data("table", path="reviews.csv", test_fraction=0.2, label_column="label",
text_column="text", tokenizer=tok)`` gives a :class:`LoadedData` (train, test, unlabeled, class
names, preprocessing); ``check_data`` validates the same options cheaply, without decoding
everything (``distill run --check``); ``guess_format`` names the format a path looks like.

A format is one module here that registers its class in :data:`DATA_FORMATS`; every module of
the package is imported, so adding a format is adding its file. Optional dependencies (pyarrow,
datasets) are imported only when a format that needs them is used.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any

from distill.registry import Registry

DATA_FORMATS: Registry[Any] = Registry("data format")

from distill.data.formats.base import (  # noqa: E402 - the formats below need the registry
    DataCheck,
    DataError,
    DataFormat,
    LoadedData,
    MissingDataError,
    SourceOptions,
)

# every module of this package is a format that registers itself: adding one is one file
_FORMAT_MODULES = tuple(sorted(
    info.name for info in pkgutil.iter_modules(__path__) if info.name != "base"))
for _module in _FORMAT_MODULES:
    importlib.import_module(f"distill.data.formats.{_module}")

from distill.data.formats.images import (  # noqa: E402 - registered above
    ImageFolderDataset,
    preprocess_image,
)

TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
ARRAY_SUFFIXES = (".npz", ".npy")
HF_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")


def check_data(format: str, **options: Any) -> DataCheck:  # noqa: A002 - the natural name
    """Validate a data source without loading it: see :class:`DataCheck`."""
    data_format = DATA_FORMATS.get(format)
    return data_format.check(data_format.options(**options))


def load_data(format: str, tokenizer: Any = None, **options: Any) -> LoadedData:  # noqa: A002
    """Load a data source as train / test (/ unlabeled) datasets ready for ``distill.distill``.

    ``options`` are the format's ``Options`` (``DATA_FORMATS.get(format).Options``); text
    formats need the student's ``tokenizer``.
    """
    data_format = DATA_FORMATS.get(format)
    return data_format.load(data_format.options(**options), tokenizer=tokenizer)


def guess_format(path: str | Path) -> str:
    """The format a path looks like, from its suffix or its folder layout.

    Files: .csv/.tsv/.jsonl/.json/.parquet → ``table``; .npz/.npy → ``numpy``. Folders: one
    with ``dataset_info.json``/``state.json``/``dataset_dict.json`` → ``hf-dataset``; class
    folders of images → ``image-folder``; class folders of .txt → ``text-folder``. A built-in
    dataset's name → ``builtin``.
    """
    path = Path(path).expanduser()
    if not path.exists():
        from distill.data import DATASETS, TEXT_DATASETS

        if str(path) in DATASETS or str(path) in TEXT_DATASETS:
            return "builtin"
        raise MissingDataError(f"{path} does not exist (a Hugging Face hub dataset? then say "
                               "format='hf-dataset')")
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in TABLE_SUFFIXES:
            return "table"
        if suffix in ARRAY_SUFFIXES:
            return "numpy"
        raise DataError(f"cannot tell the format of {path} from its suffix {suffix!r}; known: "
                        f"{', '.join(TABLE_SUFFIXES + ARRAY_SUFFIXES)}, or a folder")
    if any((path / marker).is_file() for marker in HF_MARKERS):
        return "hf-dataset"
    from distill.data.formats.images import IMAGE_SUFFIXES

    kinds = set()
    for child in path.iterdir():
        if child.is_dir() and not child.name.startswith("."):
            for file in child.rglob("*"):
                suffix = file.suffix.lower()
                if suffix in IMAGE_SUFFIXES:
                    kinds.add("image-folder")
                    break
                if suffix == ".txt":
                    kinds.add("text-folder")
                    break
    if len(kinds) == 1:
        return kinds.pop()
    if kinds:
        raise DataError(f"{path} has class folders of images and of .txt files; say which with "
                        "format='image-folder' or format='text-folder'")
    raise DataError(f"cannot tell the format of folder {path}: expected class folders of images "
                    f"or .txt files, or a saved Hugging Face dataset ({', '.join(HF_MARKERS)})")


__all__ = [
    "DATA_FORMATS",
    "DataCheck",
    "DataError",
    "DataFormat",
    "ImageFolderDataset",
    "LoadedData",
    "MissingDataError",
    "SourceOptions",
    "check_data",
    "guess_format",
    "load_data",
    "preprocess_image",
]
