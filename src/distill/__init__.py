"""distill: make large models small, and measure what each step bought.

Three ways in:

* the loss in your own loop: ``distill.KDLoss(temperature=2.0, alpha=0.5)``;
* one call: ``distill.distill(teacher, student, train_data, eval=test_data, epochs=10)``;
* a recipe: ``distill run recipes/fashion-mnist.toml``.
"""

from distill.api import DistillResult, distill, train_model
from distill.artifacts import load, save
from distill.engine import Callback, NonFiniteLossError, TrainConfig, TrainSettings
from distill.evaluate import compare, evaluate_models, measure_latency
from distill.losses import (
    AttentionLoss,
    CombinedLoss,
    DistillationLoss,
    HardLabelLoss,
    HiddenStateLoss,
    KDLoss,
    TokenKDLoss,
)
from distill.self_distillation import born_again
from distill.students import build, build_cnn, build_mlp
from distill.teachers import (
    CachedTeacher,
    EMATeacher,
    Ensemble,
    EnsembleTeacher,
    SampledTargets,
    TopKTargets,
    cache_teacher,
)

__version__ = "0.1.0"

__all__ = [
    "AttentionLoss",
    "CachedTeacher",
    "Callback",
    "CombinedLoss",
    "DistillResult",
    "DistillationLoss",
    "EMATeacher",
    "Ensemble",
    "EnsembleTeacher",
    "HardLabelLoss",
    "HiddenStateLoss",
    "KDLoss",
    "NonFiniteLossError",
    "SampledTargets",
    "TokenKDLoss",
    "TopKTargets",
    "TrainConfig",
    "TrainSettings",
    "__version__",
    "born_again",
    "build",
    "build_cnn",
    "build_mlp",
    "cache_teacher",
    "compare",
    "distill",
    "evaluate_models",
    "load",
    "measure_latency",
    "save",
    "train_model",
]
