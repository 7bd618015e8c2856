"""What ``--data`` / ``--recipe`` name, for the commands that read data (eval, cache): loaded
and prepared as the model folder records, with a warning wherever the two disagree."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

DATA_CHOICES = ["fashion-mnist", "digits", "rotten-tomatoes"]

TRUST_HELP = ("run code the model folder names (a 'module:function' factory, a Hugging Face "
              "model's own modeling files): only for folders whose source you trust")


def data_arguments(parser: argparse.ArgumentParser, verb: str) -> None:
    """--data (a built-in name or a path), or --recipe (the data a run used, exactly)."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help=f"data to {verb}: a built-in dataset "
                        f"({', '.join(DATA_CHOICES)}) or a path (image folder, CSV/JSONL/Parquet, "
                        ".npz, a saved datasets folder, a text folder; text is read by the "
                        "model's tokenizer)")
    source.add_argument("--recipe", type=Path,
                        help="take the data from a recipe's [data] table (the same split a run "
                        "of it used)")
    parser.add_argument("--format", help="the path's data format (default: guessed from it)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a data format option, e.g. label_column=label (repeatable; "
                        "values are read as TOML: numbers, true/false, [lists], or text)")


def dataset(args: argparse.Namespace) -> tuple[Any, dict[str, Any] | None]:
    """The data named by --data or --recipe, the split asked for (text: the model's tokenizer),
    and how it was prepared (None: not known). An image folder is prepared as the model
    folder records, except for what --option sets."""
    if args.recipe is not None:
        from distill.recipes.loader import load_recipe
        from distill.recipes.runner import load_data

        train, test, _ = load_data(load_recipe(args.recipe))
        return (test if args.split == "test" else train), None
    from distill.data import TEXT_DATASETS, load_dataset

    if args.data in DATA_CHOICES and args.format is None and not args.option:
        if args.data not in TEXT_DATASETS:
            return load_dataset(args.data, args.split), None
        from distill.hf.text import load_text_dataset

        text = load_text_dataset(args.data, args.split, tokenizer_for(args), args.max_length)
        return text, None
    from distill.artifacts import read_preprocessing
    from distill.data.formats import DATA_FORMATS, guess_format
    from distill.inference import recorded_image_options

    path = Path(args.data)
    if not path.exists():
        raise FileNotFoundError(f"--data {args.data!r}: no such file or folder, and not a "
                                f"built-in dataset ({', '.join(DATA_CHOICES)})")
    data_format = DATA_FORMATS.get(args.format or guess_format(path))
    given = options_of(args.option)
    options = {"path": path, "test": path, **given}
    if data_format.name == "image-folder":
        options.update(recorded_image_options(read_preprocessing(args.model), given))
    tokenizer = None
    if data_format.reads_text(data_format.options(**options)):
        tokenizer = tokenizer_for(args)
        options.setdefault("max_length", args.max_length)
    loaded = data_format.load(data_format.options(**options), tokenizer=tokenizer)
    return loaded.test, loaded.preprocessing  # the whole source (given as train and test alike)


def tokenizer_for(args: argparse.Namespace):
    from distill.hf import load_tokenizer

    return load_tokenizer(args.model, trust_remote_code=args.trust_code)


def options_of(pairs: list[str]) -> dict[str, object]:
    """KEY=VALUE pairs; each value read as a TOML value when it is one, else as text."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    options: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--option {pair!r}: write KEY=VALUE, e.g. label_column=label")
        try:
            options[key.strip()] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            options[key.strip()] = value
    return options


def mismatches(args: argparse.Namespace, prepared: dict[str, Any] | None) -> list[str]:
    """A warning for each model whose folder records other preprocessing than the data's."""
    from distill.artifacts import read_preprocessing
    from distill.inference import preprocessing_mismatches

    given = set(options_of(args.option))
    folders = [("the model", args.model)]
    folders += [("the teacher", args.teacher)] if getattr(args, "teacher", None) else []
    return [w for role, folder in folders for w in preprocessing_mismatches(
        read_preprocessing(folder), prepared, f"{role} {folder}", given)]
