"""Born-again networks (Furlanello et al. 2018): a model distilled into a copy of itself.

Generation 1 learns from hard labels; every later generation is a freshly initialised network
of the same architecture that learns from the generation before it. The paper found later
generations beating the first: the soft targets carry information the labels do not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from distill.api import DistillResult, distill, train_model
from distill.losses.base import DistillationLoss


def born_again(
    make_model: Callable[[], nn.Module],
    train: Any,
    *,
    generations: int = 2,
    eval: Any = None,  # noqa: A002 - the name users expect
    loss: DistillationLoss | None = None,
    teacher: Any = None,
    seed: int = 0,
    **train_kwargs: Any,
) -> list[DistillResult]:
    """Train ``generations`` models in sequence; return every generation's result, first first.

    ``make_model()`` builds a fresh network (called once per generation, after seeding with
    ``seed + generation``). With ``teacher`` given, generation 1 is distilled from it instead of
    trained on labels. ``loss`` and ``train_kwargs`` (epochs, lr, …) apply to every distilled
    generation, as in :func:`distill.distill`.
    """
    if generations < 1:
        raise ValueError(f"generations must be at least 1, got {generations}")
    results: list[DistillResult] = []
    previous = teacher
    for generation in range(generations):
        torch.manual_seed(seed + generation)
        model = make_model()
        if results and model is results[-1].student:
            raise ValueError("make_model() must build a new network on every call")
        if previous is None:
            result = train_model(model, train, eval=eval, seed=seed + generation,
                                 description="generation 1", **train_kwargs)
        else:
            result = distill(previous, model, train, eval=eval, loss=loss, seed=seed + generation,
                             **train_kwargs)
        result.metrics["generation"] = generation + 1
        results.append(result)
        previous = result.student.eval()
    return results
