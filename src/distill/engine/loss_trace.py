"""The training loss along an epoch, as means over windows of steps.

The per-epoch history has one training loss per epoch; a language model's recovery is one
epoch of hours, so a divergence inside it (the loss climbing back after step 300) is invisible
there and shows only as a bad final number. The trace keeps about ``POINTS`` window means per
epoch: small enough for ``metrics.json`` and a checkpoint's metadata, fine enough to plot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

POINTS = 100  # window means kept per epoch, at most


@dataclass
class LossTrace:
    """Window means of one epoch's training loss; ``every`` steps per window."""

    every: int
    steps: list[int] = field(default_factory=list)  # the step each window ended at
    loss: list[float] = field(default_factory=list)
    window_sum: float = 0.0
    window_samples: int = 0

    @classmethod
    def for_epoch(cls, steps_per_epoch: int) -> LossTrace:
        return cls(every=max(1, -(-steps_per_epoch // POINTS)))

    def add(self, step: int, loss: float, samples: int) -> None:
        """The loss of the batch that made ``step`` steps done (a mean over ``samples``)."""
        self.window_sum += loss * samples
        self.window_samples += samples
        if step % self.every == 0:
            self._close(step)

    def _close(self, step: int) -> None:
        if self.window_samples:
            self.steps.append(step)
            self.loss.append(self.window_sum / self.window_samples)
        self.window_sum, self.window_samples = 0.0, 0

    def record(self, step: int, steps_per_epoch: int) -> dict[str, Any]:
        """The finished epoch's trace, for its history record (the last window may be short)."""
        self._close(step)
        return {"steps": list(self.steps), "loss": list(self.loss), "of": steps_per_epoch}

    def to_json(self) -> dict[str, Any]:
        """What a checkpoint inside the epoch keeps, to go on with the same windows."""
        return {"every": self.every, "steps": list(self.steps), "loss": list(self.loss),
                "window": [self.window_sum, self.window_samples]}

    @classmethod
    def from_json(cls, found: Any, steps_per_epoch: int, done: int) -> LossTrace:
        """The trace a checkpoint kept after ``done`` steps, checked; a checkpoint written
        before traces were kept gives an empty one (the points before it are lost)."""
        fresh = cls.for_epoch(steps_per_epoch)
        if found is None:
            return fresh
        try:
            every, steps, loss = found["every"], found["steps"], found["loss"]
            window_sum, window_samples = found["window"]
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"its loss trace is incomplete ({err!r})") from err
        numbers_ok = (
            every == fresh.every
            and isinstance(steps, list) and isinstance(loss, list) and len(steps) == len(loss)
            and len(steps) <= POINTS + 1
            and all(isinstance(s, int) and 0 < s <= done for s in steps)
            and all(isinstance(v, float) and math.isfinite(v) for v in loss)
            and isinstance(window_sum, float) and isinstance(window_samples, int)
            and window_samples >= 0
        )
        if not numbers_ok:
            raise ValueError(f"its loss trace does not fit this run ({every=!r}, "
                             f"{len(steps) if isinstance(steps, list) else steps!r} points, "
                             f"{fresh.every} steps per window expected)")
        return cls(every, list(steps), list(loss), window_sum, window_samples)
