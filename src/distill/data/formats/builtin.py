"""``builtin``: the datasets distill ships loaders for (``fashion-mnist``, ``digits``,
``rotten-tomatoes``), so the registry knows every source a recipe can name.

``root`` points a loader at its files: Fashion-MNIST's folder of four IDX files, or the Rotten
Tomatoes ``.csv.bz2``; digits ships with scikit-learn and takes none. Their splits are fixed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from distill.data.formats import DATA_FORMATS
from distill.data.formats.base import (
    DataCheck,
    DataError,
    DataFormat,
    LoadedData,
    MissingDataError,
    did_you_mean,
    need_tokenizer,
    tokenized,
)


def builtin_names() -> list[str]:
    from distill.data import DATASETS, TEXT_DATASETS

    return [*DATASETS, *TEXT_DATASETS]


class BuiltinOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    root: Path | None = None
    max_length: int = Field(default=64, gt=0)  # rotten-tomatoes: tokens per snippet

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        names = builtin_names()
        if value not in names:
            raise ValueError(f"no built-in dataset {value!r}{did_you_mean(value, names)}")
        return value


def _image_data(options: BuiltinOptions) -> tuple[Any, Any, dict[str, Any] | None]:
    from distill.data import DatasetNotFoundError, load_digits, load_fashion_mnist
    from distill.data.fashion_mnist import MEAN, STD

    if options.name == "digits":
        if options.root is not None:
            raise DataError("digits ships with scikit-learn and takes no root")
        return load_digits("train"), load_digits("test"), None
    try:
        train = load_fashion_mnist("train", root=options.root)
        test = load_fashion_mnist("test", root=options.root)
    except DatasetNotFoundError as err:
        raise MissingDataError(str(err)) from None
    # the loader scales to [0, 1] and normalises: the same steps preprocess_image takes
    preprocessing = {"kind": "image", "size": [28, 28], "channels": "L", "mean": [MEAN],
                     "std": [STD]}
    return train, test, preprocessing


def _texts(options: BuiltinOptions) -> dict[str, tuple[list[str], list[int]]]:
    from distill.data import TEXT_DATASETS

    load = TEXT_DATASETS[options.name]
    extra = {} if options.root is None else {"path": options.root}
    try:
        return {split: load(split, **extra) for split in ("train", "test")}
    except FileNotFoundError as err:
        raise MissingDataError(str(err)) from None


def _text_class_names(name: str) -> tuple[str, ...]:
    if name == "rotten-tomatoes":
        from distill.data.rotten_tomatoes import CLASSES

        return tuple(CLASSES)
    raise DataError(f"no class names known for built-in text dataset {name!r}")  # pragma: no cover


@DATA_FORMATS.register("builtin")
class BuiltinFormat(DataFormat):
    """A dataset distill knows by name; its splits and preprocessing are fixed."""

    name = "builtin"
    Options = BuiltinOptions

    @classmethod
    def reads_text(cls, options: Any) -> bool:
        from distill.data import TEXT_DATASETS

        return options.name in TEXT_DATASETS

    @classmethod
    def check(cls, options: BuiltinOptions) -> DataCheck:
        from distill.data import TEXT_DATASETS

        if options.name in TEXT_DATASETS:
            texts = _texts(options)
            counts = {split: len(pair[0]) for split, pair in texts.items()}
            return DataCheck(cls.name, "text", None, _text_class_names(options.name), counts)
        train, test, _ = _image_data(options)
        return DataCheck(cls.name, "image", tuple(train.info.input_shape),
                         tuple(train.info.class_names), {"train": len(train), "test": len(test)})

    @classmethod
    def load(cls, options: BuiltinOptions, tokenizer: Any = None) -> LoadedData:
        from distill.data import TEXT_DATASETS

        if options.name not in TEXT_DATASETS:
            train, test, preprocessing = _image_data(options)
            return LoadedData(train, test, None, tuple(train.info.class_names), preprocessing)
        need_tokenizer(tokenizer, f"{cls.name} {options.name}")
        names = _text_class_names(options.name)
        data = {split: tokenized(texts, labels, tokenizer, options.max_length, names,
                                 f"{options.name}/{split}")
                for split, (texts, labels) in _texts(options).items()}
        preprocessing = {"kind": "text", "max_length": options.max_length}
        return LoadedData(data["train"], data["test"], None, names, preprocessing)
