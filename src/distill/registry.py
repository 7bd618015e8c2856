"""Named choices in one place: data formats, architectures, losses, tasks, artifact formats.

Each kind of extension has one :class:`Registry`. The recipe schema, the CLI's choices and the
error messages ("did you mean", the allowed values) are read from it, so adding an entry is one
``register`` call beside the code it names. Framework glue (Hugging Face, ONNX, …) registers
*lazily*: the registry holds ``"distill.hf.vision:build"``-style references to distill's own
modules and imports one only when its entry is used, so the core never imports the glue.

A registry never imports a name read from a file: lazy references are written here, in
distill's code, and only ``distill.`` modules are accepted as their targets.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(ValueError, KeyError):
    """A name that no entry of the registry has; the message lists what is allowed."""

    def __init__(self, kind: str, name: object, allowed: list[str]):
        self.kind, self.name, self.allowed = kind, name, allowed
        close = difflib.get_close_matches(str(name), allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        super().__init__(f"unknown {kind} {name!r}{hint} (choose from {', '.join(allowed)})")

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class Registry(Generic[T]):
    """Names → entries of one kind, with aliases and lazily imported entries."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T | str] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str, entry: T | None = None, *, aliases: tuple[str, ...] = (),
                 replace: bool = False) -> Callable[[T], T] | T:
        """``registry.register("name", entry)``, or ``@registry.register("name")`` as a decorator.

        A name already taken is refused unless ``replace=True`` (a user's own entry may
        deliberately shadow a built-in one).
        """
        if entry is None:
            def wrap(value: T) -> T:
                self._add(name, value, aliases, replace)
                return value

            return wrap
        self._add(name, entry, aliases, replace)
        return entry

    def register_lazy(self, name: str, target: str, *, aliases: tuple[str, ...] = ()) -> None:
        """An entry imported on first use: ``target`` is ``"distill.module:attribute"``."""
        module, _, attribute = target.partition(":")
        if not module.startswith("distill.") or not attribute:
            raise ValueError(f"lazy {self.kind} entries name distill's own modules, got {target!r}")
        self._add(name, target, aliases, replace=False)

    def _add(self, name: str, entry: T | str, aliases: tuple[str, ...], replace: bool) -> None:
        for key in (name, *aliases):
            if not replace and (key in self._entries or key in self._aliases):
                raise ValueError(f"{self.kind} {key!r} is already registered")
        self._entries[name] = entry
        for alias in aliases:
            self._aliases[alias] = name

    def canonical(self, name: str) -> str:
        """The registered name behind ``name`` (itself, or what it is an alias of)."""
        if name in self._entries:
            return name
        if name in self._aliases:
            return self._aliases[name]
        raise UnknownNameError(self.kind, name, self.names())

    def get(self, name: str) -> T:
        key = self.canonical(name)
        entry = self._entries[key]
        if isinstance(entry, str):  # lazy: import it now, once
            module, _, attribute = entry.partition(":")
            entry = getattr(importlib.import_module(module), attribute)
            self._entries[key] = entry
        return entry  # type: ignore[return-value]

    __getitem__ = get

    def unregister(self, name: str) -> None:
        """Remove an entry and its aliases (tests, or a user undoing their own entry)."""
        key = self.canonical(name)
        del self._entries[key]
        self._aliases = {a: n for a, n in self._aliases.items() if n != key}

    def names(self) -> list[str]:
        """Registered names, in registration order (aliases left out)."""
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self.names())})"
