"""The training engine: one loop for teachers, baselines and distilled students."""

from distill.engine.callbacks import Callback, FitState, ProgressBar
from distill.engine.config import TrainConfig, TrainSettings
from distill.engine.loop import FitResult, NonFiniteLossError, fit
from distill.runtime import seed_everything, thread_count

__all__ = [
    "Callback",
    "FitResult",
    "FitState",
    "NonFiniteLossError",
    "ProgressBar",
    "TrainConfig",
    "TrainSettings",
    "fit",
    "seed_everything",
    "thread_count",
]
