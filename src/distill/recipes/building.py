"""Turning recipe tables into models and training settings."""

from __future__ import annotations

from typing import Any

from torch import nn

from distill.artifacts import load
from distill.recipes.model_specs import ModuleSpec, VisionSpec, build_family_model
from distill.recipes.schema import (
    HFLayersStudent,
    HFScratchStudent,
    HFStudent,
    SavedSpec,
    TrainSpec,
)
from distill.runtime import seed_everything
from distill.students.builders import build


def train_kwargs(spec: TrainSpec) -> dict[str, Any]:
    """A recipe's training table as the keywords of ``distill``/``train_model``: the same
    settings model, so the names are the same."""
    return spec.model_dump()


def arch_kwargs(spec) -> dict[str, Any]:
    keep = {"mlp": ("hidden", "dropout"),
            "cnn": ("channels", "convs_per_stage", "head", "hidden", "dropout")}[spec.arch]
    return {k: getattr(spec, k) for k in keep}


def build_model(spec, info, seed: int | None, teacher: nn.Module | None = None) -> nn.Module:
    """A fresh model from a spec (seeded unless ``seed`` is None), or a saved one.

    Hugging Face students are made from (or beside) the ``teacher``.
    """
    if isinstance(spec, SavedSpec):
        return load(spec.path, trust_code=spec.trust_code, sha256=spec.sha256).train()
    if seed is not None:
        seed_everything(seed)
    if isinstance(spec, HFLayersStudent | HFScratchStudent | HFStudent):
        return _hf_student(spec, info, teacher)
    if isinstance(spec, VisionSpec | ModuleSpec):
        return build_family_model(spec, info)
    return build(
        spec.arch, input_shape=info.input_shape, num_classes=info.num_classes, **arch_kwargs(spec)
    )


def _hf_student(spec, info, teacher: nn.Module | None) -> nn.Module:
    from distill.hf import SentenceEncoder, keep_layers, load_model, scratch_student

    if isinstance(teacher, SentenceEncoder):  # a sentence encoder's student is one, too
        if isinstance(spec, HFStudent):
            encoder = load_model(spec.model, "base", trust_remote_code=spec.trust_code)
            return SentenceEncoder(encoder, teacher.normalize)
        return SentenceEncoder(_hf_student(spec, info, teacher.encoder), teacher.normalize)
    if isinstance(spec, HFStudent):
        return load_model(spec.model, num_labels=info.num_classes,
                          trust_remote_code=spec.trust_code)
    if teacher is None:
        raise ValueError(f"[student] arch = '{spec.arch}' is made from the teacher; none given")
    if isinstance(spec, HFLayersStudent):
        return keep_layers(teacher, spec.layers)
    if isinstance(spec, HFScratchStudent):
        return scratch_student(teacher, **spec.config)
    raise ValueError(f"[student] arch = '{spec.arch}' is cut from the teacher on the training "
                     "text: the causal-LM steps build it (distill.recipes.lm_steps)")
