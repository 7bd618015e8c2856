"""The ``[data]`` table: a built-in dataset by name, or any registered data format.

Each format's table is made from the format's own ``Options`` (``distill.data.formats``), so a
format registered there is a recipe choice here with no edit to this file:

    [data]
    format = "image-folder"        # or "table", "hf-dataset", "numpy", "text-folder"
    path = "images/train"
    test = "images/test"           # or test_fraction = 0.2
    labeled = 1000                 # optional: keep 1,000 labels, the rest become unlabelled

``dataset = "fashion-mnist"`` alone (no ``format``) is the built-in form recipes always had.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import Discriminator, Tag, create_model

from distill.data import DATASETS, TEXT_DATASETS
from distill.data.formats import DATA_FORMATS, LoadedData
from distill.recipes.values import Count, FilePath, NonNegativeCount, Section


class _Labels(Section):
    labeled: NonNegativeCount | None = None
    """Keep only this many labels (balanced); the rest of the training set becomes unlabeled
    (0: the student learns from the teacher's soft targets alone)."""


class BuiltinData(_Labels):
    """A dataset distill ships a loader for."""

    format: Literal["builtin"] = "builtin"
    dataset: Literal[tuple([*DATASETS, *TEXT_DATASETS])]  # type: ignore[valid-type]
    root: FilePath | None = None
    max_length: Count = 64
    """Text datasets: tokens per sample (longer texts are truncated)."""


def _format_table(name: str) -> type[Section]:
    """A recipe table of the format's own options, plus ``format`` and ``labeled``."""
    data_format = DATA_FORMATS.get(name)
    title = "".join(part.capitalize() for part in name.replace("_", "-").split("-"))
    return create_model(  # type: ignore[call-overload]
        f"{title}Data", __base__=(_Labels, data_format.Options), __module__=__name__,
        __doc__=data_format.__doc__, format=(Literal[name], ...),  # type: ignore[valid-type]
    )


DATA_TABLES: dict[str, type[Section]] = {
    "builtin": BuiltinData,
    **{name: _format_table(name) for name in DATA_FORMATS.names() if name != "builtin"},
}


def _data_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        return value.get("format", "builtin" if "dataset" in value else None)
    return getattr(value, "format", None)


DataSpec = Annotated[
    Union[tuple(Annotated[table, Tag(name)] for name, table in DATA_TABLES.items())],  # noqa: UP007
    Discriminator(_data_tag),
]


def format_options(data: Any) -> Any:
    """The data format's ``Options`` behind a ``[data]`` table."""
    data_format = DATA_FORMATS.get(data.format)
    if isinstance(data, BuiltinData):
        root = data.root if data.dataset != "digits" else None  # digits ships in scikit-learn
        return data_format.options(name=data.dataset, root=root, max_length=data.max_length)
    return data_format.options(**data.model_dump(exclude={"format", "labeled"}, exclude_unset=True))


def reads_text(data: Any) -> bool:
    """Whether the recipe's inputs are text: its models then need a tokenizer."""
    return DATA_FORMATS.get(data.format).reads_text(format_options(data))


def load_data_table(data: Any, tokenizer: Any = None) -> LoadedData:
    return DATA_FORMATS.get(data.format).load(format_options(data), tokenizer=tokenizer)


def data_key(data: Any) -> str:
    """What a trained teacher's weights depend on in the data: a built-in dataset's name (and
    for text its token length, as fingerprints always had), or a format's options plus the
    names, sizes and modification times of its files (changed files: a teacher trained anew)."""
    if isinstance(data, BuiltinData):
        text = data.dataset in TEXT_DATASETS
        return f"{data.dataset}@{data.max_length}" if text else data.dataset
    options = data.model_dump(mode="json", exclude={"labeled", "stream"})
    files = [_files_signature(Path(v)) for v in options.values()
             if isinstance(v, str) and os.path.exists(v)]
    blob = json.dumps({"options": options, "files": files}, sort_keys=True)
    return f"{data.format}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


def _files_signature(path: Path) -> list[Any]:
    """(relative name, size, mtime) of a file or of every file under a folder: cheap (no file
    is read) and changes when any of them does."""
    if path.is_file():
        stat = path.stat()
        return [[path.name, stat.st_size, stat.st_mtime_ns]]
    found = []
    for root, _, names in sorted(os.walk(path)):
        for name in sorted(names):
            stat = (Path(root) / name).stat()
            found.append([os.path.relpath(Path(root) / name, path), stat.st_size,
                          stat.st_mtime_ns])
    return found
