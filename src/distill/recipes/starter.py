"""``distill init``: a commented starter recipe for the user's data and teacher, that runs as
written.

The data is looked at (format guessed, then checked: input kind and shape, classes, sizes) and
every choice the recipe makes is explained in a comment beside it, so the file is the
documentation of the run it describes. Nothing is trained here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from distill.data.formats import DATA_FORMATS, DataCheck, guess_format

DEFAULT_TEST_FRACTION = 0.2
LABEL_NAMES = ("label", "labels", "target", "class", "category", "y")
TEXT_NAMES = ("text", "sentence", "review", "content", "document")


@dataclass(frozen=True)
class Starter:
    text: str  # the recipe, comments included
    data: DataCheck


def starter_recipe(data: str | Path, *, teacher: str | None = None, out: Path,
                   name: str | None = None) -> Starter:
    """A recipe for ``data`` (a path) and ``teacher`` (a saved folder, a Hugging Face folder or
    hub id, or a vision family name; None: a teacher the recipe trains), to be written at
    ``out`` (paths in it are made relative to that file's folder)."""
    source = Path(data)
    data_format = guess_format(source)
    if data_format == "builtin":
        data_table = [f'dataset = "{source}"']
        found = DATA_FORMATS.get("builtin").check(DATA_FORMATS.get("builtin").options(
            name=str(source)))
    else:
        data_table, found = _data_table(source, data_format, out)
    lines = [f'# A starter recipe written by `distill init` for {source}.',
             "# Run it with `distill run <this file>`; check it first with `--check`.",
             f'name = "{name or _run_name(source)}"', "", "[data]",
             f"# {found.summary()}", *data_table, ""]
    lines += _models(found, teacher, out)
    lines += ["", "[baseline]",
              "# the same student trained on the labels alone, so the report can say what",
              "# distillation added (and whether that is more than the noise)",
              "enabled = true", "",
              "[evaluate]",
              "# latency with one thread at batch 1 and 64: the speed-up a service would see",
              "threads = 1", "batch_sizes = [1, 64]", ""]
    return Starter("\n".join(lines), found)


def _run_name(source: Path) -> str:
    stem = source.stem or source.name or "my-data"
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in stem) or "my-data"


def _relative(path: Path, out: Path) -> str:
    return Path(os.path.relpath(path.resolve(), out.resolve().parent)).as_posix()


def _data_table(source: Path, data_format: str, out: Path) -> tuple[list[str], DataCheck]:
    table = [f'format = "{data_format}"', f'path = "{_relative(source, out)}"']
    options: dict[str, object] = {"path": source}
    sibling = _test_sibling(source)
    if sibling is not None:
        table += [f'test = "{_relative(sibling, out)}"  # found beside the training data']
        options["test"] = sibling
    else:
        table += [f"test_fraction = {DEFAULT_TEST_FRACTION}  # held out, stratified by class, "
                  "seeded (split_seed = 0)"]
        options["test_fraction"] = DEFAULT_TEST_FRACTION
    if data_format == "table":
        columns = _table_columns(source)
        label = next((c for c in LABEL_NAMES if c in columns), None)
        if label is None:
            raise ValueError(
                f"{source}: no column looks like the label ({', '.join(LABEL_NAMES)}); its "
                f"columns are {', '.join(columns)}. Write the [data] table yourself "
                "(label_column, text_column or feature_columns = \"all-numeric\")")
        text = next((c for c in TEXT_NAMES if c in columns), None)
        table.append(f'label_column = "{label}"')
        options["label_column"] = label
        if text is not None:
            table.append(f'text_column = "{text}"  # read by the teacher\'s tokenizer')
            options["text_column"] = text
        else:
            table.append('feature_columns = "all-numeric"  # standardised with the training '
                         "split's mean and std")
            options["feature_columns"] = "all-numeric"
    fmt = DATA_FORMATS.get(data_format)
    return table, fmt.check(fmt.options(**options))


def _table_columns(source: Path) -> list[str]:
    """A table's column names, from its first line or its schema (nothing else is read)."""
    import json

    if source.suffix == ".parquet":
        from distill.data.formats.base import require

        return list(require("pyarrow.parquet", "table").read_schema(source).names)
    with source.open(encoding="utf-8") as f:
        first = f.readline()
    if source.suffix in (".jsonl", ".json"):
        try:
            return list(json.loads(first))
        except (json.JSONDecodeError, TypeError):
            return []
    return [c.strip().strip('"') for c in first.rstrip("\n").split(
        "\t" if source.suffix == ".tsv" else ",")]


def _test_sibling(source: Path) -> Path | None:
    """``train/`` beside ``test/`` (or ``train.csv`` beside ``test.csv``): the test split."""
    if "train" not in source.name:
        return None
    candidate = source.with_name(source.name.replace("train", "test"))
    return candidate if candidate.exists() else None


def _models(found: DataCheck, teacher: str | None, out: Path) -> list[str]:
    kind = found.input_kind
    if teacher is None:
        if kind == "text":
            raise ValueError("text data needs a teacher that reads it: pass --teacher with a "
                             "Hugging Face model folder or hub id")
        return _trained_teacher(found) + _student(found, family=None)
    path = Path(teacher)
    if (path / "config.json").is_file() and not (path / "model_type").exists():
        from distill.artifacts import read_config

        try:
            read_config(path)
            return ["[teacher]", "# your saved teacher, used as it is (not trained again)",
                    f'path = "{_relative(path, out)}"', ""] + _student(found, family=None)
        except ValueError:
            pass  # not a distill folder: a Hugging Face one
    from distill.hf.vision import FAMILIES

    if teacher in FAMILIES:
        family = FAMILIES.canonical(teacher)
        return (["[teacher]", f"# transformers' {family}, trained by this recipe first (then "
                 "cached and reused)", 'arch = "hf-vision"', f'family = "{family}"',
                 'size = "small"', "", "[teacher.train]", "epochs = 20", ""]
                + _student(found, family="mobilenet_v2"))
    model = _relative(path, out) if path.exists() else teacher
    if kind != "text":
        raise ValueError(f"--teacher {teacher!r}: a Hugging Face text model, but the data is "
                         f"{kind}; for images name a vision family ({', '.join(FAMILIES)})")
    return ["[teacher]", "# a Hugging Face classifier; its tokenizer reads the text",
            'arch = "hf"', f'model = "{model}"', "",
            "[student]", "# every other block of the teacher, weights copied (DistilBERT)",
            'arch = "hf-layers"', "", "[train]", "epochs = 3", "batch_size = 32"]


def _trained_teacher(found: DataCheck) -> list[str]:
    if found.input_kind == "image":
        return ["[teacher]", "# no teacher given: a CNN the recipe trains first (then cached)",
                'arch = "cnn"', "channels = [32, 64]", 'head = "flatten"', "hidden = 256",
                "dropout = 0.3", "", "[teacher.train]", "epochs = 15",
                'augment = "flip-shift"  # the teacher generalises better; the student sees '
                "its labels of the same views", ""]
    return ["[teacher]", "# no teacher given: a wide MLP the recipe trains first (then cached)",
            'arch = "mlp"', "hidden = [256, 256]", "dropout = 0.1", "", "[teacher.train]",
            "epochs = 50", "batch_size = 32", ""]


def _student(found: DataCheck, family: str | None) -> list[str]:
    if family is not None:
        return ["[student]", "# a small vision family, distilled from the teacher",
                'arch = "hf-vision"', f'family = "{family}"', 'size = "tiny"', "",
                "[train]", "epochs = 10"]
    if found.input_kind == "image":
        return ["[student]", "# about 10x fewer parameters than the teacher",
                'arch = "cnn"', "channels = [16, 32]", 'head = "flatten"', "hidden = 32", "",
                "[loss]", "# soft targets at T = 2, blended half and half with the labels",
                "temperature = 2.0", "alpha = 0.5", "", "[train]", "epochs = 10"]
    return ["[student]", "# a narrow MLP", 'arch = "mlp"', "hidden = [32]", "",
            "[train]", "epochs = 50", "batch_size = 32"]
