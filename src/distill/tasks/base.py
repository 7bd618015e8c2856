"""A task says what a model is trained to do, and so how it is evaluated and what loss it needs.

The engine, the one-call API and the recipes ask the task; nothing guesses it from the shape of
the labels. A dataset may declare its task (``DatasetInfo.task``: distill's language-model
datasets say ``"causal-lm"``); otherwise the caller names it, and classification is the default.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from torch import nn

from distill.losses.base import DistillationLoss
from distill.registry import Registry


class Task(ABC):
    """How one kind of model is evaluated, and the loss it learns from by default."""

    name: str
    headline: str
    """The metric a report leads with (``accuracy``, ``perplexity``, ``cosine``)."""
    higher_is_better: bool = True

    @abstractmethod
    def evaluate(self, model: nn.Module, data: Any, *, teacher: Any = None, batch_size: int = 512,
                 device: str = "cpu", memo: dict[str, Any] | None = None) -> dict[str, float]:
        """Metrics of ``model`` on ``data`` (and against ``teacher`` when given). ``memo``
        keeps what need not be recomputed between calls, e.g. a fixed teacher's outputs."""

    @abstractmethod
    def default_loss(self, student: nn.Module | None = None,
                     teacher: nn.Module | None = None) -> DistillationLoss:
        """The distillation loss used when the caller names none."""

    def __repr__(self) -> str:
        return f"<task {self.name}>"


TASKS: Registry[Task] = Registry("task")


def task_of(data: Any) -> str | None:
    """The task a dataset declares (its ``info.task``), if it declares one."""
    return getattr(getattr(data, "info", None), "task", None)


def resolve_task(task: str | Task | None, *datasets: Any) -> Task:
    """``task`` itself, or else the first task one of ``datasets`` declares, or else
    classification."""
    if isinstance(task, Task):
        return task
    if task is None:
        task = next((t for t in map(task_of, datasets) if t is not None), "classification")
    return TASKS.get(task)
