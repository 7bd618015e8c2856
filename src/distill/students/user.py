"""A user's own ``nn.Module`` as teacher or student, named by ``"package.module:factory"``.

Importing a module runs its code, so a factory string is imported only with ``trust_code=True``
(the same opt-in :func:`distill.load` asks for a folder naming one). The model is tagged with
the string and its keyword arguments, which :func:`distill.save` records so that
``distill.load(folder, trust_code=True)`` rebuilds it.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from typing import Any

from torch import nn

from distill.artifacts import UntrustedCodeError


class FactoryError(ValueError):
    """A ``"module:factory"`` string that does not give a model; the message says why."""


def build_user_model(factory: str, /, *, trust_code: bool = False, **kwargs: Any) -> nn.Module:
    """``module.factory(**kwargs)`` for ``factory = "package.module:factory"``, tagged so that
    :func:`distill.save` records how to rebuild it (``kwargs`` must then be JSON values).

    Refused without ``trust_code=True``, before anything is imported.
    """
    module_name, attribute = _split(factory)
    if not trust_code:
        raise UntrustedCodeError(
            f"building {factory!r} imports module {module_name!r} and runs {attribute!r}, which "
            "runs whatever code they hold; if you trust them, pass trust_code=True "
            "(a recipe's trust_code = true, the CLI's --trust-code)")
    function = resolve_factory(factory)
    _check_arguments(factory, function, kwargs)
    model = function(**kwargs)
    if not isinstance(model, nn.Module):
        raise FactoryError(f"{factory!r} returned a {type(model).__name__}, not a model "
                           "(torch.nn.Module)")
    model.distill_spec = {"architecture": factory, "kwargs": dict(kwargs)}
    return model


def _check_arguments(factory: str, function: Any, kwargs: dict[str, Any]) -> None:
    """Refuse keyword arguments the factory does not take, naming them (a TypeError raised
    inside the factory is its own and passes through unchanged)."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # some builtins and C extensions have none
        return
    try:
        signature.bind(**kwargs)
    except TypeError as err:
        raise FactoryError(f"{factory!r} cannot be called with {sorted(kwargs) or 'no'} keyword "
                           f"arguments: {err} (its signature: {signature})") from err


def resolve_factory(factory: str) -> Any:
    """The callable ``"package.module:factory"`` names (imports the module: trusted callers
    only)."""
    module_name, attribute = _split(factory)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name is not None and (module_name == err.name
                                     or module_name.startswith(err.name + ".")):
            raise FactoryError(f"{factory!r}: no module named {module_name!r} (is its package "
                               "installed, or its folder on sys.path?)") from err
        raise FactoryError(f"{factory!r}: module {module_name!r} imports {err.name!r}, which is "
                           "not installed") from err
    except ImportError as err:
        raise FactoryError(f"{factory!r}: importing {module_name!r} failed: {err}") from err
    target: Any = module
    for part in attribute.split("."):  # "module:Class.method" reaches a classmethod
        if not hasattr(target, part):
            names = [n for n in dir(target) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise FactoryError(f"{factory!r}: {getattr(target, '__name__', module_name)!r} has no "
                               f"attribute {part!r}{hint}")
        target = getattr(target, part)
    if not callable(target):
        raise FactoryError(f"{factory!r} names a {type(target).__name__}, which is not callable; "
                           "name a function or class that returns an nn.Module")
    return target


def _split(factory: str) -> tuple[str, str]:
    if not isinstance(factory, str):
        raise FactoryError(f"a factory is a 'package.module:function' string, got "
                           f"{type(factory).__name__}")
    module_name, colon, attribute = factory.partition(":")
    if not colon or not module_name or not attribute or ":" in attribute:
        raise FactoryError(f"{factory!r} is not a 'package.module:function' string")
    return module_name, attribute
