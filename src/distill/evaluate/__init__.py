"""Evaluation: quality against labels and teacher, size, latency, and side-by-side comparison."""

from distill.evaluate.compare import compare, evaluate_models
from distill.evaluate.latency import measure_latency
from distill.evaluate.metrics import (
    accuracy,
    agreement,
    classification_metrics,
    expected_calibration_error,
    kl_to_teacher,
)
from distill.evaluate.predict import Predictions, predict
from distill.evaluate.size import count_parameters, size_on_disk

__all__ = [
    "Predictions",
    "accuracy",
    "agreement",
    "classification_metrics",
    "compare",
    "count_parameters",
    "evaluate_models",
    "expected_calibration_error",
    "kl_to_teacher",
    "measure_latency",
    "predict",
    "size_on_disk",
]
