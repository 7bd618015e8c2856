"""``text-corpus``: text for a causal language model, no labels but the next tokens.

``path`` is a ``.txt``/``.md`` file (documents separated by blank lines), a folder of them, or
a ``.jsonl`` file: one document per line in ``text_field``, or instruction pairs in
``prompt_field`` + ``completion_field`` (only the completion's tokens are learned). Plain text
is joined by EOS and cut into ``block_length``-token blocks; pairs are padded to
``max_length``. ``test_fraction`` holds out whole documents (seeded), never half of one. A
plain-text ``test`` beside pair training data (say, a teacher's generations) is scored as
blocks: perplexity on real text.
The datasets declare ``task = "causal-lm"``, so they are scored by perplexity.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from distill.data.formats import DATA_FORMATS
from distill.data.formats.base import (
    DataCheck,
    DataError,
    DataFormat,
    LoadedData,
    MissingDataError,
    SourceOptions,
    need_tokenizer,
)
from distill.data.formats.text_folders import read_text

TEXT_FILES = (".txt", ".md")


class CorpusOptions(SourceOptions):
    text_field: str = "text"
    prompt_field: str | None = None
    completion_field: str | None = None
    block_length: int = Field(default=128, gt=0)
    """Plain text: tokens per training block."""
    max_blocks: int | None = Field(default=None, gt=0)
    """Plain text: keep the first blocks only (a token budget)."""
    test_blocks: int | None = Field(default=None, gt=0)
    """Plain text: blocks of the test split, spread evenly over all of it (default: the
    first ``max_blocks``). Bounds what every evaluation costs without dropping documents."""
    max_length: int = Field(default=128, gt=0)
    """Prompt + completion pairs: tokens per pair (longer ones are cut)."""

    @model_validator(mode="after")
    def _pairs_together(self) -> CorpusOptions:
        if (self.prompt_field is None) != (self.completion_field is None):
            raise ValueError("give prompt_field and completion_field together (or neither)")
        return self


Document = str | tuple[str, str]  # a text, or a (prompt, completion) pair


def read_documents(path: Path, options: CorpusOptions) -> list[Document]:
    if not path.exists():
        raise MissingDataError(f"{path} does not exist")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in TEXT_FILES and p.is_file())
        if not files:
            raise DataError(f"{path} holds no {' or '.join(TEXT_FILES)} files")
        return [doc for f in files for doc in _paragraphs(read_text(f))]
    if path.suffix == ".jsonl":
        return _json_lines(path, options)
    if path.suffix in TEXT_FILES:
        return _paragraphs(read_text(path))
    raise DataError(f"{path}: a corpus is a .txt/.md file, a folder of them, or a .jsonl file")


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in text.split("\n\n") if p.strip()]


def _json_lines(path: Path, options: CorpusOptions) -> list[Document]:
    pairs = options.prompt_field is not None
    fields = [options.prompt_field, options.completion_field] if pairs else [options.text_field]
    documents: list[Document] = []
    for number, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path} line {number}: not JSON ({err.msg})") from None
        if not isinstance(row, dict):
            raise DataError(f"{path} line {number}: a JSON object per line, got "
                            f"{type(row).__name__}")
        missing = [f for f in fields if not isinstance(row.get(f), str)]
        if missing:
            raise DataError(f"{path} line {number}: no text field {missing[0]!r} (fields: "
                            f"{', '.join(row) or 'none'}); set "
                            f"{'prompt_field/completion_field' if pairs else 'text_field'}")
        documents.append((row[fields[0]], row[fields[1]]) if pairs else row[fields[0]])
    if not documents:
        raise DataError(f"{path} holds no documents")
    return documents


def _splits(options: CorpusOptions) -> dict[str, list[Document]]:
    train = read_documents(Path(options.path), options)
    if options.test is not None:
        test = read_documents(Path(options.test), options)
    else:
        order = np.random.default_rng(options.split_seed).permutation(len(train))
        held = int(round(len(train) * float(options.test_fraction)))
        if held < 1 or held >= len(train):
            raise DataError(f"{options.path}: test_fraction={options.test_fraction} of "
                            f"{len(train)} documents leaves no "
                            f"{'test' if held < 1 else 'training'} documents")
        test = [train[i] for i in sorted(order[:held])]
        train = [train[i] for i in sorted(order[held:])]
    splits = {"train": train, "test": test}
    if options.unlabeled is not None:
        splits["unlabeled"] = read_documents(Path(options.unlabeled), options)
    return splits


class CorpusFormat(DataFormat):
    """Text for a causal language model (see the module's docstring)."""

    name = "text-corpus"
    Options = CorpusOptions

    @classmethod
    def reads_text(cls, options: Any) -> bool:
        return True

    @classmethod
    def check(cls, options: CorpusOptions) -> DataCheck:
        splits = _splits(options)
        return DataCheck(cls.name, "text", None, (), {k: len(v) for k, v in splits.items()})

    @classmethod
    def load(cls, options: CorpusOptions, tokenizer: Any = None) -> LoadedData:
        need_tokenizer(tokenizer, cls.name)
        from distill.lm.data import causal_blocks, prompt_completions

        def tokenized(documents: list[Document], split: str) -> Any:
            name = f"{Path(options.path).name}/{split}"
            if documents and isinstance(documents[0], tuple):  # a .txt test beside pairs
                prompts, completions = zip(*documents, strict=True)
                return prompt_completions(list(prompts), list(completions), tokenizer,
                                          max_length=options.max_length, name=name)
            spread = split == "test" and options.test_blocks is not None
            return causal_blocks(documents, tokenizer, options.block_length,  # type: ignore[arg-type]
                                 max_blocks=options.test_blocks if spread else options.max_blocks,
                                 spread=spread, name=name)

        splits = {k: tokenized(v, k) for k, v in _splits(options).items()}
        preprocessing = {"kind": "text", "block_length": options.block_length,
                         "max_length": options.max_length}
        return LoadedData(splits["train"], splits["test"], splits.get("unlabeled"), (),
                          preprocessing)


DATA_FORMATS.register(CorpusFormat.name, CorpusFormat)
