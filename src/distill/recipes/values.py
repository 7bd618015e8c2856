"""The value types recipe fields are built from (the shared limits live in distill.values).

A recipe is untrusted text: a value that validates must be one a run can use, or the run fails
late (a seed numpy refuses, after the teacher trained) or with an error that names no field (a
NUL byte reaching ``open``). So counts are bounded, floats are finite (``Section`` sets
``allow_inf_nan=False``), and paths and names are checked the way the operating system will.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from distill.values import (  # noqa: F401 - the shared limits, re-exported for recipes
    MAX_COUNT,
    MAX_NESTING,
    MAX_THREADS,
    NAME_MAX,
    PATH_MAX,
    SEED_LIMIT,
    Count,
    Device,
    Fraction,
    NonNegativeCount,
    Seed,
    Threads,
    check_path_text,
)


def expand_home(text: str) -> str:
    """``~`` and ``~user`` expanded, or a ValueError (pathlib raises RuntimeError)."""
    if not text.startswith("~"):
        return text
    try:
        return str(Path(text).expanduser())
    except RuntimeError:
        user = text.split("/", 1)[0]
        raise ValueError(f"cannot expand {user!r}: no such user, or no home folder") from None


def _checked_path(path: Path) -> Path:
    check_path_text(str(path))
    return Path(check_path_text(expand_home(str(path))))


def _name_or_path(text: str) -> str:
    return check_path_text(expand_home(check_path_text(text)))


def _file_name(text: str) -> str:
    if "/" in check_path_text(text) or text in (".", ".."):
        raise ValueError("names the run folder (runs/<name>): one file name, without '/', "
                         "not '.' or '..'")
    return text


def _config_value(value: Any) -> Any:
    """One clear error for a config value, instead of one per type it is not."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and not -MAX_COUNT - 1 <= value <= MAX_COUNT:
        raise ValueError("an integer here lies in [-2**31, 2**31 - 1]")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    if isinstance(value, str):
        return check_path_text(value)
    if not isinstance(value, (int, float)):
        raise ValueError(f"must be an integer, a number, a string or true/false, "
                         f"not {type(value).__name__}")
    return value


def _layer(value: Any) -> Any:
    """A block number or a module name, with one error for anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value <= MAX_COUNT:
            raise ValueError(f"a block number lies in [0, {MAX_COUNT}]")
        return value
    if isinstance(value, str):
        return check_path_text(value)
    raise ValueError("must be a block number or a module name")


def _identifier(text: str) -> str:
    if not text.isidentifier() or not text.isascii() or len(text) > NAME_MAX:
        raise ValueError("is not a config field name (letters, digits and _)")
    return text


FilePath = Annotated[Path, AfterValidator(_checked_path)]
"""A file or folder: checked, ``~`` expanded (relative ones resolve against the recipe)."""
Name = Annotated[str, AfterValidator(check_path_text)]
"""A name that may become a folder name or reach the OS (a run name, a module name)."""
RunName = Annotated[str, AfterValidator(_file_name)]
"""A recipe's name: its run folder's (``runs/<name>``), which must stay inside ``runs/``."""
NameOrPath = Annotated[str, Field(min_length=1), AfterValidator(_name_or_path)]
"""A Hugging Face hub id or a local folder (``~`` expanded)."""
Identifier = Annotated[str, AfterValidator(_identifier)]
Layer = Annotated[int | str, BeforeValidator(_layer)]
"""A transformer block: its number, or its module's name."""
ConfigValue = Annotated[bool | int | float | str, BeforeValidator(_config_value)]
"""A Hugging Face config field's value: int32, finite, or a checked string."""


class Section(BaseModel):
    """Every table: unknown fields refused, and no float field takes inf or nan (a run
    would only find out after training to NaN)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
