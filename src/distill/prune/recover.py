"""Prune, then recover: the unpruned model teaches its pruned self (Minitron's recipe).

High ratios are reached in steps — prune a little, recover, prune again — so that each
recovery starts from a model that still works. Recovery by distillation from the unpruned
model is compared, at equal steps, with recovery by fine-tuning on hard labels.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal

from torch import nn

from distill.api import DistillResult, distill, train_model
from distill.hf.io import is_hf_model
from distill.prune.masks import magnitude_prune, nm_prune
from distill.prune.structured import prune_structured

Method = Literal["structured", "magnitude", "2:4"]


@dataclass
class PruneResult:
    """The pruned, recovered model and what each step did."""

    model: nn.Module
    steps: list[dict[str, Any]] = field(default_factory=list)
    fits: list[DistillResult] = field(default_factory=list)

    @property
    def metrics(self) -> dict[str, Any]:
        return self.steps[-1]["metrics"] if self.steps else {}

    @property
    def history(self) -> list[dict[str, Any]]:
        """Every recovery epoch of every step, numbered in order, with its step."""
        out = []
        for step, fit in enumerate(self.fits, 1):
            for record in fit.history:
                out.append({**record, "epoch": len(out) + 1, "prune_step": step})
        return out


def step_ratios(ratio: float, steps: int, method: Method) -> list[float]:
    """What each step asks for. Structured ratios apply to what is left, so equal steps of
    ``1 - (1 - ratio)^(1/steps)`` compound to ``ratio``; mask sparsities are totals."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if method == "structured":
        return [1.0 - (1.0 - ratio) ** (1.0 / steps)] * steps
    return [ratio * (i + 1) / steps for i in range(steps)]


def prune_once(model: nn.Module, method: Method, ratio: float, *,
               importance: str = "magnitude", data: Any = None,
               example_inputs: Any = None) -> nn.Module:
    """Prune ``model`` in place, once: the one dispatch over methods that a recipe's pruned
    student (every step of :func:`prune_and_recover`) and its ``prune`` stages share.

    Structured pruning removes ``ratio`` of what is left (Hugging Face transformers: MLP
    neurons; plain modules are traced with ``example_inputs``); ``magnitude`` zeros weights up
    to a total sparsity of ``ratio``; ``2:4`` keeps two of every four weights.
    """
    if method == "structured" and is_hf_model(model):
        from distill.hf.pruning import prune_neurons

        prune_neurons(model, ratio, importance=importance, data=data)
    elif method == "structured":
        if example_inputs is None:
            raise ValueError("structured pruning traces the model: pass example_inputs=<a batch>")
        prune_structured(model, example_inputs, ratio, importance=importance, data=data)
    elif method == "magnitude":
        magnitude_prune(model, ratio)
    elif method == "2:4":
        nm_prune(model)
    else:
        raise ValueError(f"method must be 'structured', 'magnitude' or '2:4', got {method!r}")
    return model


def prune_and_recover(
    model: nn.Module,
    train: Any,
    *,
    ratio: float = 0.5,
    method: Method = "structured",
    steps: int = 1,
    recover: Literal["distill", "finetune", "none"] = "distill",
    example_inputs: Any = None,
    importance: str = "magnitude",
    epochs_per_step: int = 1,
    eval: Any = None,  # noqa: A002 - the name users expect
    **train_settings: Any,
) -> PruneResult:
    """A pruned copy of ``model`` (left untouched), recovered after every step.

    ``recover="distill"`` trains the pruned copy against ``model`` as its teacher (KD loss
    unless ``loss=`` is given); ``"finetune"`` on hard labels; ``"none"`` only prunes.
    ``example_inputs`` (one input batch) is needed for structured pruning of plain modules;
    Hugging Face transformers lose MLP neurons (:func:`distill.hf.pruning.prune_neurons`).
    """
    if recover not in ("distill", "finetune", "none"):
        raise ValueError(f"recover must be 'distill', 'finetune' or 'none', got {recover!r}")
    if method == "structured" and example_inputs is None and not is_hf_model(model):
        raise ValueError("structured pruning traces the model: pass example_inputs=<a batch>")
    if method not in ("structured", "magnitude", "2:4"):
        raise ValueError(f"method must be 'structured', 'magnitude' or '2:4', got {method!r}")
    teacher = model.eval()
    student = copy.deepcopy(model)
    result = PruneResult(student)
    ratios = [0.5] if method == "2:4" else step_ratios(ratio, steps, method)
    for i, step_ratio in enumerate(ratios):
        prune_once(student, method, step_ratio, importance=importance, data=train,
                   example_inputs=example_inputs)
        record: dict[str, Any] = {"step": i + 1, "ratio": step_ratio, "metrics": {}}
        if recover != "none":
            fitted: DistillResult
            if recover == "distill":
                fitted = distill(teacher, student, train, eval=eval, epochs=epochs_per_step,
                                 **train_settings)
            else:
                settings = {k: v for k, v in train_settings.items() if k != "loss"}
                fitted = train_model(student, train, eval=eval, epochs=epochs_per_step,
                                     **settings)
            record["metrics"] = fitted.metrics
            result.fits.append(fitted)
        result.steps.append(record)
    return result
