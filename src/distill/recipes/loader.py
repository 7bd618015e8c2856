"""Reading a TOML recipe into a validated :class:`Recipe`, with errors a user can act on.

Every problem is reported at once, each naming the table and field (``[train] optimizer``), what
was found, and what is allowed; a misspelt field gets a "did you mean". Whatever the file holds
(nesting 1,000 deep, NUL bytes, ``~nosuchuser``), the answer is a recipe or a RecipeError.
"""

from __future__ import annotations

import difflib
import reprlib
import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Tag, ValidationError

from distill.recipes.schema import Recipe, SavedSpec, TeacherEnsemble
from distill.recipes.values import MAX_NESTING, check_path_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class RecipeError(ValueError):
    """A recipe could not be read or is invalid; ``str()`` lists every problem."""


def _problems(source: str, lines: list[str]) -> RecipeError:
    return RecipeError(f"{source}: {len(lines)} problem{'s' if len(lines) > 1 else ''}:\n  - "
                       + "\n  - ".join(lines))


_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 80


def _show(value: Any) -> str:
    """A value as the user wrote it, cut short (a 1 MB string, a list nested 1,000 deep)."""
    return _SHORT.repr(value)


def _reason(err: Exception) -> str:
    """An OS error's reason without the file name it repeats (that may be 5,000 bytes long)."""
    return err.strerror if isinstance(err, OSError) and err.strerror else str(err)


def _key(key: Any) -> str:
    """A table or field name, quoted when it could garble the message (NUL, newline, length)."""
    text = str(key)
    return text if text.isprintable() and len(text) <= 64 else _show(text)


def _members(annotation: Any) -> list[Any]:
    """Unwrap Annotated/Optional/Union/list into the classes a field may hold."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated or origin is list:
        return _members(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        out: list[Any] = []
        for arg in typing.get_args(annotation):
            out.extend(_members(arg))
        return out
    return [annotation]


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The section class that an error location points into (list indexes and union tags
    are skipped)."""
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
        if i < len(loc) and isinstance(loc[i], int):  # an item of a list of tables
            i += 1
        if len(models) > 1 and i < len(loc):
            chosen = [m for m in models if _literal_tag(m) == loc[i]]
            if chosen:
                models, i = chosen, i + 1
        current = models[0]
        if i == len(loc):
            return current
    return current


def _tags(annotation: Any) -> list[str]:
    """The tags of a tagged union (e.g. each [[stages]] ``kind``), read from the schema."""
    out: list[str] = []
    for arg in typing.get_args(annotation):
        out.extend([arg.tag] if isinstance(arg, Tag) else _tags(arg))
    return out


def _literal_tag(model: type[BaseModel]) -> str | None:
    """The ``arch`` (for stages ``kind``, for data ``format``) that picks this table in its
    union."""
    field = (model.model_fields.get("arch") or model.model_fields.get("kind")
             or model.model_fields.get("format"))
    if field is None:
        return None
    args = typing.get_args(field.annotation)
    return args[0] if args else None


def _is_tag(item: Any, node: dict[str, Any]) -> bool:
    """Whether a location item is the union tag pydantic inserts after this table."""
    return item in (node.get("arch"), node.get("kind"), node.get("format"), "saved", "ensemble",
                    "builtin")


def _readable_loc(loc: tuple[Any, ...], data: Any) -> tuple[list[str], str | None]:
    """Split a pydantic location into the table path and the field, dropping union tags and
    what pydantic adds below a value (a union member's label, ``[key]``)."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(node, dict) and item in node:
            parts.append(_key(item))
            node = node[item]
        elif isinstance(node, list) and isinstance(item, int) and item < len(node):
            parts.append(f"[{item}]")
            node = node[item]
        elif isinstance(node, dict) and _is_tag(item, node):
            continue
        elif parts and not isinstance(node, (dict, list)):
            break
        else:
            parts.append(_key(item))
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
        name = str(error["loc"][-1])
        close = difflib.get_close_matches(name, allowed, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        noun = "section" if not tables else "field"
        return f"{where}: unknown {noun} {_show(name)} (allowed: {', '.join(allowed)}){hint}"
    if kind == "missing":
        return f"{where}: missing required field '{field}'"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        section = _where([*tables, field] if field else tables)
        if error["loc"][:1] == ("stages",):  # told apart by kind, not arch
            kinds = ", ".join(repr(t) for t in _tags(Recipe.model_fields["stages"].annotation))
            if kind == "union_tag_not_found":
                return f"{section}: say which stage with kind = {kinds}"
            tag = given.get("kind") if isinstance(given := error.get("input"), dict) else None
            return f"{section}: kind {_show(tag)} is not supported (allowed: {kinds})"
        if kind == "union_tag_not_found":
            return f"{section}: say which model with arch = 'mlp', 'cnn' or 'saved' (with path)"
        given = error.get("input")
        found = given.get("arch") if isinstance(given, dict) else None
        return f"{section}: arch {_show(found)} is not supported (allowed: 'mlp', 'cnn', 'saved')"
    message = error["msg"].removeprefix("Value error, ")  # our validators' own words
    if kind == "value_error" and not error["loc"]:
        return message
    label = f"{where} {field}" if field else where
    return f"{label}: {message} (got {_show(error.get('input'))})"


def _label(loc: list[Any]) -> str:
    parts = [f"[{p}]" if isinstance(p, int) else _key(p) for p in loc]
    return f"{_where(parts[:-1])} {parts[-1]}" if parts else "top level"


def _field_of(path: list[Any]) -> list[Any]:
    """The start of a path into the data that names a recipe field (``train, lr``)."""
    model: type[BaseModel] = Recipe
    i = 0
    while i < len(path) and path[i] in model.model_fields:
        j = i + 1 + (i + 1 < len(path) and isinstance(path[i + 1], int))  # a list of tables
        inner = [m for m in _members(model.model_fields[path[i]].annotation)
                 if isinstance(m, type) and issubclass(m, BaseModel)
                 and j < len(path) and path[j] in m.model_fields]
        if not inner:
            break
        model, i = inner[0], j
    field = model.model_fields.get(path[i]) if i < len(path) else None
    keyed = (field is not None and i + 1 < len(path) and isinstance(path[i + 1], str)
             and any(typing.get_origin(m) is dict for m in _members(field.annotation)))
    return path[:i + 2 if keyed else i + 1]  # and the key, in a field that is a dict (config)


def _too_deep(data: Any) -> str | None:
    """Where ``data`` nests tables and arrays more than MAX_NESTING deep: the field it starts
    in (``[train] lr``), found without recursing (the point is not to overflow the stack)."""
    stack: list[tuple[Any, list[Any]]] = [(data, [])]
    while stack:
        node, path = stack.pop()
        if len(path) >= MAX_NESTING:
            return _label(_field_of(path))
        items = (node.items() if isinstance(node, dict)
                 else enumerate(node) if isinstance(node, list) else ())
        stack.extend((v, [*path, k]) for k, v in items if isinstance(v, (dict, list)))
    return None


def _nesting(where: str) -> str:
    return f"{where}: tables and arrays nested more than {MAX_NESTING} deep"


def parse_recipe(
    data: dict[str, Any], source: str = "<recipe>", base: Path | None = None
) -> Recipe:
    deep = _too_deep(data)
    if deep is not None:
        raise _problems(source, [_nesting(deep)])
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as err:
        raise _problems(source, [_describe(e, data) for e in err.errors()]) from None
    except RecursionError:  # pragma: no cover - _too_deep refuses such data first
        raise _problems(source, [_nesting("top level")]) from None
    return _resolve_paths(recipe, base, source) if base is not None else recipe


def _resolve_paths(recipe: Recipe, base: Path, source: str) -> Recipe:
    """Relative paths in a recipe are relative to the recipe file, not to the shell's folder.

    Joined to that folder a path may grow too long or meet a symlink loop: said here, with
    its field, rather than as an OSError (or pathlib's RuntimeError) from the run."""
    problems: list[str] = []

    def near(text: str | Path, where: str, only_existing: bool = False) -> Path | None:
        joined = base / text
        try:
            check_path_text(str(joined))
            if only_existing and not joined.exists():
                return None
            return joined.resolve()
        except (OSError, RuntimeError, ValueError) as err:
            problems.append(f"{where}: {_reason(err)}, relative to the recipe's folder "
                            f"(got {_show(str(text))})")
            return None

    def fix(path: Path | None, where: str) -> Path | None:
        return path if path is None or path.is_absolute() else near(path, where)

    def fix_spec(spec: Any, where: str) -> Any:
        if spec is None:
            return None
        changes: dict[str, Any] = {}
        if isinstance(spec, SavedSpec):
            changes["path"] = fix(spec.path, f"{where} path")
        model = getattr(spec, "model", None)  # Hugging Face: a hub id, or a folder near here
        if isinstance(model, str) and not Path(model).is_absolute():
            folder = near(model, f"{where} model", only_existing=True)
            if folder is not None:
                changes["model"] = str(folder)
        if getattr(spec, "cache_path", None) is not None:
            changes["cache_path"] = fix(spec.cache_path, f"{where} cache_path")
        if isinstance(spec, TeacherEnsemble):
            changes["members"] = [fix_spec(m, f"[teacher.members.[{i}]]")
                                  for i, m in enumerate(spec.members)]
        return spec.model_copy(update=changes)

    data = recipe.data  # every path among the data table's options
    updates: dict[str, Any] = {"data": data.model_copy(update={
        name: fix(value, f"[data] {name}") for name, value in data if isinstance(value, Path)})}
    for role in ("teacher", "student"):
        updates[role] = fix_spec(getattr(recipe, role), f"[{role}]")
    if problems:
        raise _problems(source, problems)
    return recipe.model_copy(update=updates)


def _skip_string(text: str, i: int) -> int:
    """The index just past the TOML string that starts at ``text[i]``."""
    quote = text[i] * 3 if text.startswith(text[i] * 3, i) else text[i]
    i += len(quote)
    while i < len(text) and not text.startswith(quote, i):
        i += 2 if text[i] == "\\" and quote[0] == '"' else 1
    return i + len(quote)


def _line_end(text: str, i: int) -> int:
    end = text.find("\n", i)
    return len(text) if end < 0 else end


def _deep_in_text(text: str) -> str | None:
    """Where TOML text nests arrays or inline tables too deep for tomllib's recursion: a
    scan that knows strings, comments, headers and keys, enough to name the field and line."""
    depth, line, seg, table, i = 0, 1, 0, "", 0
    keys: list[tuple[int, str]] = []  # (depth, key) of each ``key =`` enclosing this point
    while i < len(text):
        c = text[i]
        if c in "\"'":
            end = _skip_string(text, i)
            line, i = line + text.count("\n", i, end), end
            continue
        if c == "#":
            i = _line_end(text, i)
            continue
        if c == "\n":
            line += 1
            seg = i + 1 if depth == 0 else seg
        elif depth == 0 and c == "[" and not text[seg:i].strip():  # a [table] header
            end = _line_end(text, i)
            table, i = text[i:end].split("#")[0].strip().strip("[]").strip(), end
            continue
        elif c == "=":
            keys = [k for k in keys if k[0] < depth] + [(depth, text[seg:i].strip())]
        elif c in "[{,":
            depth += c != ","
            seg = i + 1
            if depth > MAX_NESTING:
                names = [*(table.split(".") if table else []), *(k for _, k in keys)]
                return f"{_label(_field_of(names))} (line {line})"
        elif c in "]}":
            depth = max(depth - 1, 0)
            keys = [k for k in keys if k[0] <= depth]
        i += 1
    return None


def load_recipe(path: str | Path) -> Recipe:
    path = Path(path)
    try:
        found = path.is_file()
        text = path.read_text(encoding="utf-8") if found else ""
    except UnicodeDecodeError as err:
        raise RecipeError(f"{path}: not a UTF-8 text file ({err})") from None
    except (OSError, ValueError) as err:  # a NUL byte or an over-long name in the path itself
        raise RecipeError(f"cannot read recipe file {_show(str(path))}: {_reason(err)}") from None
    if not found:
        shown = str(path) if str(path).isprintable() else _show(str(path))
        raise RecipeError(f"recipe file {shown} does not exist")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise RecipeError(f"{path}: not valid TOML: {err}") from None
    except RecursionError:
        where = _deep_in_text(text) or "top level"
        raise _problems(str(path), [_nesting(where)]) from None
    return parse_recipe(data, str(path), path.parent)
