"""What every data format shares: its options, its check report, its result, labels and splits.

A format is a class with an ``Options`` pydantic model, ``check(options) -> DataCheck`` (cheap:
headers, schemas and label columns, never a training pass) and ``load(options, tokenizer=None)
-> LoadedData``. Every problem with the user's data is a :class:`DataError` whose one-line
message names the file (and row, column or key) and what was expected.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from torch.utils.data import Dataset

from distill.data.base import DatasetInfo

InputKind = Literal["image", "tabular", "text"]
RowName = Callable[[int], str]


def data_row(index: int) -> str:
    return f"row {index + 1}"


class DataError(ValueError):
    """The user's data (or the options describing it) cannot be used; the message says why."""


class MissingDataError(DataError, FileNotFoundError):
    """A file or folder named by the options does not exist."""


class SourceOptions(BaseModel):
    """Settings every file-based format shares: where train, test and unlabeled data live.

    ``path`` is the training data, or the one source that ``test_fraction`` splits (stratified
    by class, reproducibly by ``split_seed``). ``unlabeled`` is an extra transfer set in the same
    format whose labels, if any, are ignored. Exactly one of ``test`` / ``test_fraction``.
    """

    model_config = ConfigDict(extra="forbid")

    path: Path
    test: Path | None = None
    test_fraction: float | None = Field(default=None, gt=0.0, lt=1.0)
    split_seed: int = 0
    unlabeled: Path | None = None

    # a format whose source can carry its own test split (a saved DatasetDict) allows neither
    test_may_come_from_source: ClassVar[bool] = False

    @model_validator(mode="after")
    def _one_test_source(self) -> SourceOptions:
        if self.test is not None and self.test_fraction is not None:
            raise ValueError("give either test=<file or folder> or test_fraction, not both")
        if self.test is None and self.test_fraction is None and not self.test_may_come_from_source:
            raise ValueError(
                "say where the test data comes from: test=<file or folder> or test_fraction=0.2"
            )
        return self


@dataclass(frozen=True)
class DataCheck:
    """What ``check`` found, without decoding everything: enough to build a student and plan."""

    format: str
    input_kind: InputKind
    input_shape: tuple[int, ...] | None  # None for text: the tokenizer decides the length
    class_names: tuple[str, ...]
    counts: dict[str, int]  # samples per split: train, test, and unlabeled when given

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def summary(self) -> str:
        shape = "tokens" if self.input_shape is None else "x".join(map(str, self.input_shape))
        counts = ", ".join(f"{n} {split}" for split, n in self.counts.items())
        return (f"{self.format}: {self.input_kind} inputs ({shape}), {self.num_classes} classes, "
                f"{counts}")


@dataclass
class LoadedData:
    """Datasets ready for ``distill.distill``, and what a predictor must repeat on new inputs."""

    train: Dataset
    test: Dataset
    unlabeled: Dataset | None
    class_names: tuple[str, ...]
    preprocessing: dict[str, Any] | None = field(default=None)


class DataFormat:
    """Base of the registered formats: subclasses set ``name``/``Options`` and the two methods."""

    name: ClassVar[str]
    Options: ClassVar[type[BaseModel]]

    @classmethod
    def options(cls, **values: Any) -> Any:
        """Validate raw settings into ``Options``; every problem in one :class:`DataError`."""
        try:
            return cls.Options(**values)
        except ValidationError as err:
            problems = [_describe(e, cls.Options) for e in err.errors()]
            raise DataError(f"{cls.name} options: {'; '.join(problems)}") from None

    @classmethod
    def reads_text(cls, options: Any) -> bool:
        """Whether the inputs are text (read by the student's tokenizer), known from the options
        alone: a recipe decides before any file is opened that it needs a tokenizer."""
        return False

    @classmethod
    def check(cls, options: Any) -> DataCheck:
        """Validate the source cheaply (no training, no full decode)."""
        raise NotImplementedError

    @classmethod
    def load(cls, options: Any, tokenizer: Any = None) -> LoadedData:
        """The datasets; text formats need the student's ``tokenizer``."""
        raise NotImplementedError


def _describe(error: Any, model: type[BaseModel]) -> str:
    name = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"unknown option {name!r}{did_you_mean(name, list(model.model_fields))}"
    if error["type"] == "missing":
        return f"missing required option {name!r}"
    message = error["msg"].removeprefix("Value error, ")
    return f"{name}: {message} (got {error.get('input')!r})" if name else message


def did_you_mean(name: str, allowed: Sequence[str]) -> str:
    """``"; did you mean 'x'?"`` when a close match exists, then the allowed names."""
    close = difflib.get_close_matches(name, list(allowed), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    shown = ", ".join(repr(a) for a in allowed[:30]) + (" …" if len(allowed) > 30 else "")
    return f"{hint} (available: {shown})"


def need_tokenizer(tokenizer: Any, format_name: str) -> None:
    if tokenizer is None:
        raise DataError(
            f"{format_name}: text inputs need the student's tokenizer: pass tokenizer= "
            "(for example distill.hf.load_tokenizer(<model>))"
        )


def existing(path: Path, what: str, *, folder: bool | None = None) -> Path:
    """``path`` (``~`` expanded) if it exists, else a :class:`MissingDataError` naming it."""
    path = Path(path).expanduser()
    if not path.exists():
        raise MissingDataError(f"{what} {path} does not exist")
    if folder is True and not path.is_dir():
        raise DataError(f"{what} {path} is a file; expected a folder")
    if folder is False and not path.is_file():
        raise DataError(f"{what} {path} is a folder; expected a file")
    return path


def require(module: str, format_name: str) -> Any:
    """Import an optional dependency, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"the {format_name} data format needs {module.split('.')[0]}: "
            "pip install 'distill[data]'"
        ) from err


def visible_children(folder: Path) -> list[Path]:
    """Sorted entries of ``folder`` without hidden ones (.DS_Store, .ipynb_checkpoints)."""
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def tokenized(texts: Sequence[str], labels: np.ndarray | None, tokenizer: Any, max_length: int,
              class_names: Sequence[str], name: str) -> Any:
    """A :class:`~distill.hf.text.TokenizedText` whose info carries the class names."""
    from distill.hf.text import TokenizedText

    data = TokenizedText.from_texts(texts, tokenizer, labels, max_length=max_length,
                                    num_classes=len(class_names), name=name)
    info = DatasetInfo(name, (max_length,), len(class_names), tuple(class_names))
    return TokenizedText(data.encodings, data.labels, info, data.trim_padding)


# ---------------------------------------------------------------------------------------------
# labels and splits

Label = int | str
# integer labels up to this many classes are taken as indices even when most never occur
MAX_SPARSE_CLASSES = 1000


@dataclass(frozen=True)
class LabelMap:
    """Raw label values → class indices.

    String labels are numbered in sorted order; integer labels keep their value (class 3 stays
    class 3) and are named ``"0"`` … ``str(max)``. Either way ``class_names[i]`` names class
    ``i``.
    """

    class_names: tuple[str, ...]
    index: dict[Label, int]
    integer: bool

    @classmethod
    def from_train(cls, values: Iterable[Label], where: str = "the training data") -> LabelMap:
        distinct = set(values)
        if not distinct:
            raise DataError(f"{where}: no labels to build classes from")
        if all(isinstance(v, int) for v in distinct):
            top = max(distinct)  # type: ignore[type-var]
            if top + 1 > max(MAX_SPARSE_CLASSES, 10 * len(distinct)):
                raise DataError(
                    f"{where}: integer labels are class indices, but they reach {top} while "
                    f"only {len(distinct)} distinct values occur (IDs?); store them as text to "
                    "use them as class names"
                )
            return cls(tuple(str(i) for i in range(top + 1)), {v: v for v in distinct}, True)
        names = sorted(str(v) for v in distinct)
        return cls(tuple(names), {name: i for i, name in enumerate(names)}, False)

    @classmethod
    def from_names(cls, names: Sequence[str]) -> LabelMap:
        """Named classes whose stored labels are already indices (a ClassLabel feature)."""
        return cls(tuple(names), {i: i for i in range(len(names))}, True)

    def encode(self, values: Sequence[Label], where: str, row_name: RowName = data_row
               ) -> np.ndarray:
        """Indices of ``values``; a label the training data never had is an error naming it."""
        out = np.empty(len(values), dtype=np.int64)
        for i, value in enumerate(values):
            if self.integer:
                digits = isinstance(value, str) and value.strip().isdigit()
                key: Label = int(value) if digits else value
            else:
                key = str(value)
            found = self.index.get(key)
            if found is None:
                known = ", ".join(repr(k) for k in sorted(self.index, key=str)[:20])
                raise DataError(
                    f"{where}: label {value!r} in {row_name(i)} never occurs in the training "
                    f"data (its labels: {known})"
                )
            out[i] = found
        return out


def clean_labels(values: Sequence[Any], where: str, row_name: RowName = data_row
                 ) -> list[Label]:
    """Label values checked and normalised to ints (integral floats too) or strings."""
    out: list[Label] = []
    for i, value in enumerate(values):
        if value is None or (isinstance(value, float | np.floating) and np.isnan(value)) or (
            isinstance(value, str) and not value.strip()
        ):
            raise DataError(f"{where}: the label is missing in {row_name(i)}")
        if isinstance(value, bool | np.bool_):
            value = str(bool(value))
        elif isinstance(value, float | np.floating):
            if not float(value).is_integer():
                raise DataError(
                    f"{where}: label {value} in {row_name(i)} is not a whole number; "
                    "classification needs class labels (names, or indices 0, 1, 2, …)"
                )
            value = int(value)
        elif isinstance(value, np.integer):
            value = int(value)
        elif isinstance(value, np.str_):
            value = str(value)
        elif isinstance(value, bytes):
            value = value.decode("utf-8", errors="replace")
        elif not isinstance(value, int | str):
            raise DataError(f"{where}: the label in {row_name(i)} is a {type(value).__name__}; "
                            "expected a class name or a class index")
        if isinstance(value, int) and value < 0:
            raise DataError(f"{where}: label {value} in {row_name(i)} is negative; integer "
                            "labels are class indices 0, 1, 2, …")
        out.append(value)
    return out


def split_by_class(labels: np.ndarray, fraction: float, seed: int,
                   where: str) -> tuple[np.ndarray, np.ndarray]:
    """``(train, test)`` indices: each class gives ``n * fraction`` (rounded) samples to test.

    The same labels and seed give the same split; every class keeps at least one sample in
    train, so the test set never holds a class the training set lacks.
    """
    rng = np.random.default_rng(seed)
    train_parts, test_parts = [], []
    for value in np.unique(labels):
        members = np.flatnonzero(labels == value)
        members = members[rng.permutation(len(members))]
        n_test = min(int(np.floor(len(members) * fraction + 0.5)), len(members) - 1)
        test_parts.append(members[:n_test])
        train_parts.append(members[n_test:])
    train, test = np.sort(np.concatenate(train_parts)), np.sort(np.concatenate(test_parts))
    if len(test) == 0:
        raise DataError(f"{where}: test_fraction={fraction} of {len(labels)} samples leaves no "
                        "test samples; raise it or give test=<file or folder>")
    return train, test


# ---------------------------------------------------------------------------------------------
# folders of class folders (images, text)


def files_under(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Every file below ``folder`` (any depth) with one of ``suffixes``, sorted; hidden skipped."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in suffixes
                  and not p.name.startswith(".") and p.is_file())


def class_folder_files(root: Path, what: str, suffixes: tuple[str, ...], noun: str
                       ) -> list[tuple[Path, str]]:
    """``(file, class folder name)`` of every ``noun`` file under ``root/<class>/``."""
    root = existing(root, what, folder=True)
    children = visible_children(root)
    class_dirs = [c for c in children if c.is_dir()]
    if not class_dirs:
        loose = [c for c in children if c.suffix.lower() in suffixes]
        if loose:
            raise DataError(
                f"{what} {root} holds {len(loose)} {noun} files but no class folders; put each "
                f"class in its own folder: {root}/<class>/{loose[0].name}"
            )
        raise DataError(f"{what} {root} is empty; expected one folder of {noun} files per class")
    files: list[tuple[Path, str]] = []
    for class_dir in class_dirs:
        found = files_under(class_dir, suffixes)
        if not found:
            raise DataError(f"class folder {class_dir} holds no {noun} files "
                            f"({', '.join(suffixes)})")
        files += [(path, class_dir.name) for path in found]
    return files


@dataclass
class FolderSplits:
    """Files and class indices of each split of a folder-of-class-folders source."""

    train: list[Path]
    train_labels: np.ndarray
    test: list[Path]
    test_labels: np.ndarray
    unlabeled: list[Path] | None
    label_map: LabelMap

    def counts(self) -> dict[str, int]:
        counts = {"train": len(self.train), "test": len(self.test)}
        if self.unlabeled is not None:
            counts["unlabeled"] = len(self.unlabeled)
        return counts


def split_class_folders(options: SourceOptions, suffixes: tuple[str, ...], noun: str
                        ) -> FolderSplits:
    """Train / test / unlabeled files; class names are the training folder's class folders.

    The test folder may hold a subset of the classes, never one training lacks; the unlabeled
    folder may be flat or hold class folders (their names are ignored).
    """
    files = class_folder_files(options.path, f"{noun} folder", suffixes, noun)
    label_map = LabelMap.from_train(name for _, name in files)
    paths = [path for path, _ in files]
    labels = label_map.encode([name for _, name in files], str(options.path))
    if options.test is not None:
        test_files = class_folder_files(options.test, f"test {noun} folder", suffixes, noun)
        unknown = sorted({name for _, name in test_files} - set(label_map.class_names))
        if unknown:
            raise DataError(
                f"test {noun} folder {options.test} has class folder {unknown[0]!r}, which the "
                f"training folder lacks (its classes: {', '.join(label_map.class_names)})"
            )
        test = [path for path, _ in test_files]
        test_labels = label_map.encode([name for _, name in test_files], str(options.test))
        train, train_labels = paths, labels
    else:
        train_idx, test_idx = split_by_class(labels, options.test_fraction or 0.0,
                                             options.split_seed, str(options.path))
        train, test = [paths[i] for i in train_idx], [paths[i] for i in test_idx]
        train_labels, test_labels = labels[train_idx], labels[test_idx]
    unlabeled = None
    if options.unlabeled is not None:
        folder = existing(options.unlabeled, f"unlabeled {noun} folder", folder=True)
        unlabeled = files_under(folder, suffixes)
        if not unlabeled:
            raise DataError(f"unlabeled {noun} folder {folder} holds no {noun} files "
                            f"({', '.join(suffixes)})")
    return FolderSplits(train, train_labels, test, test_labels, unlabeled, label_map)
