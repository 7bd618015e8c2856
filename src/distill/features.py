"""Capture what inner layers output, with forward hooks, so user models need no edits.

Intermediate-layer losses (hidden states, attention maps) compare what a student layer and a
teacher layer produce on the same batch. Both models run as usual; a :class:`FeatureTap` keeps
the latest output of each watched submodule, named as ``model.named_modules()`` names them
(``"bert.encoder.layer.3"``) or, for Hugging Face transformers, by block index (``3``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from torch import Tensor, nn

Selector = Callable[[Any], Tensor | None]


def first_tensor(output: Any) -> Tensor | None:
    """A block's main output: the tensor itself, or the first item of a tuple/ModelOutput."""
    if isinstance(output, Tensor):
        return output
    if isinstance(output, tuple | list) and output:
        return first_tensor(output[0])
    values = getattr(output, "values", None)  # ModelOutput / dict
    if callable(values):
        return first_tensor(next(iter(values()), None))
    return None


def attention_weights(output: Any) -> Tensor | None:
    """An attention module's weights: the second item of its ``(output, weights)`` tuple."""
    if isinstance(output, tuple | list) and len(output) > 1 and isinstance(output[1], Tensor):
        return output[1]
    return None


class FeatureTap:
    """Forward hooks on named submodules of ``model``; ``tap[name]`` is their latest output.

    Use as a context manager (or call :meth:`remove`) so the hooks do not outlive the run.
    """

    def __init__(self, model: nn.Module, names: Iterable[str], select: Selector = first_tensor):
        self.model = model
        self.names = list(dict.fromkeys(names))
        self.select = select
        self.outputs: dict[str, Tensor] = {}
        modules = dict(model.named_modules())
        missing = [n for n in self.names if n not in modules]
        if missing:
            raise KeyError(
                f"{type(model).__name__} has no submodule named {missing[0]!r}"
                f"{_did_you_mean(missing[0], modules)}"
            )
        self._handles = [modules[n].register_forward_hook(self._hook(n)) for n in self.names]

    def _hook(self, name: str):
        def keep(_module: nn.Module, _inputs: Any, output: Any) -> None:
            value = self.select(output)
            if value is None:
                raise RuntimeError(
                    f"the output of {name!r} holds no tensor to compare; for attention maps, "
                    "load the model with attn_implementation='eager'"
                )
            self.outputs[name] = value

        return keep

    def __getitem__(self, name: str) -> Tensor:
        if name not in self.outputs:
            raise RuntimeError(
                f"no output captured from {name!r}: did the model run a forward pass since the "
                "tap was attached (and is that layer on its path)?"
            )
        return self.outputs[name]

    def clear(self) -> None:
        self.outputs.clear()

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> FeatureTap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def _did_you_mean(name: str, modules: dict[str, nn.Module]) -> str:
    import difflib

    close = difflib.get_close_matches(name, [n for n in modules if n], n=3)
    if close:
        return f"; did you mean {', '.join(repr(c) for c in close)}?"
    return "; list the names with [n for n, _ in model.named_modules()]"
