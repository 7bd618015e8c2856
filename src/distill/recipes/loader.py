"""Reading a TOML recipe into a validated :class:`Recipe`, with errors a user can act on.

Every problem is reported at once, each naming the table and field (``[train] optimizer``), what
was found, and what is allowed; a misspelt field gets a "did you mean".
"""

from __future__ import annotations

import difflib
import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from distill.recipes.schema import Recipe, SavedSpec, TeacherEnsemble

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class RecipeError(ValueError):
    """A recipe could not be read or is invalid; ``str()`` lists every problem."""


def _members(annotation: Any) -> list[Any]:
    """Unwrap Annotated/Optional/Union into the classes a field may hold."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        out: list[Any] = []
        for arg in typing.get_args(annotation):
            out.extend(_members(arg))
        return out
    return [annotation]


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The section class that an error location points into (tags of unions are skipped)."""
    current: type[BaseModel] = Recipe
    i = 0
    while i < len(loc):
        field = current.model_fields.get(str(loc[i]))
        if field is None:
            return current if i == len(loc) - 1 else None
        models = [m for m in _members(field.annotation) if isinstance(m, type)
                  and issubclass(m, BaseModel)]
        if not models:
            return current if i == len(loc) - 1 else None
        i += 1
        if len(models) > 1 and i < len(loc):
            tag = loc[i]
            chosen = [m for m in models if _literal_arch(m) == tag]
            if chosen:
                models, i = chosen, i + 1
        current = models[0]
        if i == len(loc):
            return current
    return current


def _literal_arch(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("arch")
    if field is None:
        return None
    args = typing.get_args(field.annotation)
    return args[0] if args else None


def _readable_loc(loc: tuple[Any, ...], data: Any) -> tuple[list[str], str | None]:
    """Split a pydantic location into the table path and the field, dropping union tags."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(node, dict) and item in node:
            parts.append(str(item))
            node = node[item]
        elif isinstance(node, list) and isinstance(item, int) and item < len(node):
            parts.append(f"[{item}]")
            node = node[item]
        elif isinstance(item, str) and item in ("mlp", "cnn", "saved"):
            continue
        else:
            parts.append(str(item))
            node = None
    if not parts:
        return [], None
    return parts[:-1], parts[-1]


def _where(tables: list[str]) -> str:
    return f"[{'.'.join(tables)}]" if tables else "top level"


def _describe(error: dict[str, Any], data: dict[str, Any]) -> str:
    tables, field = _readable_loc(tuple(error["loc"]), data)
    kind = error["type"]
    where = _where(tables)
    if kind == "extra_forbidden":
        model = _model_at(tuple(error["loc"])[:-1]) if error["loc"][:-1] else Recipe
        allowed = sorted(model.model_fields) if model else []
        close = difflib.get_close_matches(str(field), allowed, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        noun = "section" if not tables else "field"
        return f"{where}: unknown {noun} '{field}' (allowed: {', '.join(allowed)}){hint}"
    if kind == "missing":
        return f"{where}: missing required field '{field}'"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        section = _where([*tables, field] if field else tables)
        if kind == "union_tag_not_found":
            return f"{section}: say which model with arch = 'mlp', 'cnn' or 'saved' (with path)"
        given = error.get("input")
        found = given.get("arch") if isinstance(given, dict) else None
        return f"{section}: arch {found!r} is not supported (allowed: 'mlp', 'cnn', 'saved')"
    if kind == "value_error" and not error["loc"]:
        return error["msg"].removeprefix("Value error, ")
    got = error.get("input")
    label = f"{where} {field}" if field else where
    return f"{label}: {error['msg']} (got {got!r})"


def parse_recipe(
    data: dict[str, Any], source: str = "<recipe>", base: Path | None = None
) -> Recipe:
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as err:
        lines = [_describe(e, data) for e in err.errors()]
        raise RecipeError(
            f"{source}: {len(lines)} problem{'s' if len(lines) > 1 else ''}:\n  - "
            + "\n  - ".join(lines)
        ) from None
    return _resolve_paths(recipe, base) if base is not None else recipe


def _resolve_paths(recipe: Recipe, base: Path) -> Recipe:
    """Relative paths in a recipe are relative to the recipe file, not to the shell's folder."""
    def fix(path: Path | None) -> Path | None:
        if path is None or path.is_absolute():
            return path
        return (base / path.expanduser()).resolve()

    data = recipe.data.model_copy(update={"root": fix(recipe.data.root)})
    updates: dict[str, Any] = {"data": data}
    def fix_spec(spec: Any) -> Any:
        if spec is None:
            return None
        changes: dict[str, Any] = {}
        if isinstance(spec, SavedSpec):
            changes["path"] = fix(spec.path)
        model = getattr(spec, "model", None)  # Hugging Face: a hub id, or a folder near here
        if isinstance(model, str) and not Path(model).is_absolute() and (base / model).exists():
            changes["model"] = str((base / model).resolve())
        if getattr(spec, "cache_path", None) is not None:
            changes["cache_path"] = fix(spec.cache_path)
        if isinstance(spec, TeacherEnsemble):
            changes["members"] = [fix_spec(m) for m in spec.members]
        return spec.model_copy(update=changes)

    for role in ("teacher", "student"):
        updates[role] = fix_spec(getattr(recipe, role))
    return recipe.model_copy(update=updates)


def load_recipe(path: str | Path) -> Recipe:
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise RecipeError(f"{path}: not valid TOML: {err}") from None
    except UnicodeDecodeError as err:
        raise RecipeError(f"{path}: not a UTF-8 text file ({err})") from None
    return parse_recipe(data, str(path), path.parent)
