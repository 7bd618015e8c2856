"""Pruning: masks (unstructured magnitude, N:M) and structured removal of neurons and channels.

Masks zero weights but keep every shape; structured pruning returns a smaller dense model.
Either is usually followed by recovery training — distillation from the unpruned model
(:func:`distill.distill` with it as the teacher) recovers more than fine-tuning on labels.
"""

from distill.prune.masks import (
    LayerSparsity,
    magnitude_prune,
    make_permanent,
    nm_prune,
    overall_sparsity,
    permanent_copy,
    prunable_layers,
    sparsity_report,
)
from distill.prune.recover import PruneResult, prune_and_recover, prune_once, step_ratios
from distill.prune.structured import output_layers, prune_structured

__all__ = [
    "LayerSparsity",
    "PruneResult",
    "magnitude_prune",
    "make_permanent",
    "nm_prune",
    "output_layers",
    "overall_sparsity",
    "permanent_copy",
    "prunable_layers",
    "prune_and_recover",
    "prune_once",
    "prune_structured",
    "sparsity_report",
    "step_ratios",
]
