"""Hooks into the training loop: progress display, and whatever users add."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from torch import nn


@dataclass
class FitState:
    """What the loop exposes to callbacks."""

    model: nn.Module
    epochs: int
    steps_per_epoch: int
    epoch: int = 0
    step: int = 0
    global_step: int = 0
    loss: float = float("nan")
    lr: float = 0.0
    samples: int = 0
    epoch_samples: int = 0
    epoch_started: float = field(default_factory=time.perf_counter)
    history: list[dict[str, Any]] = field(default_factory=list)


class Callback:
    def on_fit_start(self, state: FitState) -> None: ...

    def on_epoch_start(self, state: FitState) -> None: ...

    def on_step_end(self, state: FitState) -> None: ...

    def on_epoch_end(self, state: FitState) -> None: ...

    def on_fit_end(self, state: FitState) -> None: ...


class ProgressBar(Callback):
    """A tqdm bar per epoch with the running loss and samples per second."""

    def __init__(self, description: str = "train", enabled: bool | None = None):
        self.description = description
        self.enabled = enabled
        self.bar = None
        self.smoothed = None

    def on_epoch_start(self, state: FitState) -> None:
        from tqdm.auto import tqdm

        self.smoothed = None
        self.bar = tqdm(
            total=state.steps_per_epoch,
            initial=state.step,  # a run resumed inside the epoch starts where it stopped
            desc=f"{self.description} {state.epoch + 1}/{state.epochs}",
            disable=False if self.enabled else None if self.enabled is None else True,
            leave=True,
            dynamic_ncols=True,
        )

    def on_step_end(self, state: FitState) -> None:
        if self.bar is None:
            return
        self.smoothed = (
            state.loss if self.smoothed is None else 0.95 * self.smoothed + 0.05 * state.loss
        )
        if state.step % 10 == 0 or state.step == state.steps_per_epoch:
            elapsed = max(1e-9, time.perf_counter() - state.epoch_started)
            self.bar.set_postfix(
                loss=f"{self.smoothed:.4f}", samples_s=f"{state.epoch_samples / elapsed:,.0f}"
            )
        self.bar.update(1)

    def on_epoch_end(self, state: FitState) -> None:
        if self.bar is None:
            return
        last = state.history[-1] if state.history else {}
        extra = {k: f"{v:.4f}" for k, v in last.items() if k.startswith("eval_")}
        if extra:
            self.bar.set_postfix(loss=f"{last.get('train_loss', float('nan')):.4f}", **extra)
        self.bar.close()
        self.bar = None
