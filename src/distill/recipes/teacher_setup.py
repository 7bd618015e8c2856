"""Getting a recipe's teacher: trained once and cached, loaded from a folder, or an ensemble;
and, when asked, its outputs stored on disk."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from distill.api import train_model
from distill.artifacts import load, save
from distill.data import ArrayDataset
from distill.engine import distributed
from distill.paths import cache_dir
from distill.recipes.building import build_model, train_kwargs
from distill.recipes.data_specs import data_key
from distill.recipes.schema import (
    HFTeacher,
    Recipe,
    SavedSpec,
    TeacherEnsemble,
)
from distill.teachers import CachedTeacher, Ensemble, cache_teacher

log = logging.getLogger("distill")

# how the teacher's outputs are delivered, not what the teacher is
OUTPUT_FIELDS = ("cache", "outputs", "top_k", "samples", "sampler", "cache_dtype", "cache_path",
                 "attention")
_WEIGHTS_ONLY = {**dict.fromkeys(OUTPUT_FIELDS, True), "train": {"threads"}, "trust_code": True,
                 "sha256": True}


@dataclass
class TeacherSetup:
    module: nn.Module
    path: Path | None = None  # where the teacher is saved, if anywhere
    history: list[dict[str, Any]] = field(default_factory=list)
    members: list[dict[str, Any]] = field(default_factory=list)  # an ensemble's members


# training settings added after teachers were first cached: at their defaults they leave the
# fingerprint as it was, so existing caches stay valid
_LATER_DEFAULTS = {"accumulate": 1, "precision": "fp32", "distributed": "ddp", "momentum": 0.9}
# how often training is checkpointed does not change the weights it ends with
_NOT_WEIGHTS = {"checkpoint_steps"}


def _without_later_defaults(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_later_defaults(v) for k, v in value.items()
                if not (k in _LATER_DEFAULTS and v == _LATER_DEFAULTS[k]) and k not in _NOT_WEIGHTS}
    if isinstance(value, list):
        return [_without_later_defaults(v) for v in value]
    return value


def spec_fingerprint(spec: Any, dataset: str) -> str:
    """What changes a teacher's trained weights; not threads, not how its outputs are used."""
    exclude: dict[str, Any] = dict(_WEIGHTS_ONLY)
    if isinstance(spec, TeacherEnsemble):
        exclude["members"] = {"__all__": _WEIGHTS_ONLY}
    teacher = _without_later_defaults(spec.model_dump(mode="json", exclude=exclude))
    blob = json.dumps({"v": 1, "teacher": teacher, "data": {"dataset": dataset}}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _data_key(recipe: Recipe) -> str:
    return data_key(recipe.data)


def teacher_fingerprint(recipe: Recipe) -> str:
    return spec_fingerprint(recipe.teacher, _data_key(recipe))


def _trained(spec: Any, dataset: str, train: ArrayDataset, test: ArrayDataset, progress,
             name: str, tokenizer: Any = None) -> TeacherSetup:
    if isinstance(spec, HFTeacher):
        return _hf_teacher(spec, dataset, train, test, progress, tokenizer)
    if isinstance(spec, SavedSpec):
        model = load(spec.path, trust_code=spec.trust_code, sha256=spec.sha256)
        return TeacherSetup(model.eval(), spec.path)
    if getattr(spec, "weights", None) is not None:  # a family model with its own checkpoint
        model = build_model(spec, train.info, spec.train.seed)
        return TeacherSetup(model.eval(), spec.weights)
    folder = cache_dir() / "teachers" / spec_fingerprint(spec, dataset)
    if spec.cache and (folder / "config.json").is_file():
        log.info("%s: reusing %s", name, folder)
        trusted = getattr(spec, "trust_code", False)  # the user's own module: rebuilt by it
        return TeacherSetup(load(folder, trust_code=trusted).eval(), folder)
    log.info("%s: training %s (%d epochs)", name, spec.arch, spec.train.epochs)
    model = build_model(spec, train.info, spec.train.seed)
    result = train_model(model, train, eval=test, progress=progress, description=name,
                         **train_kwargs(spec.train))
    if not spec.cache:
        return TeacherSetup(model.eval(), None, result.history)
    with distributed.main_first():  # under torchrun every rank trained it; one writes it
        if distributed.is_main():
            save(model, folder, metadata={"accuracy": result.metrics.get("accuracy")})
    log.info("%s: %.2f%% test accuracy, cached in %s", name, 100 * result.metrics["accuracy"],
             folder)
    return TeacherSetup(model.eval(), folder, result.history)


def _hf_teacher(spec: HFTeacher, dataset: str, train, test, progress, tokenizer) -> TeacherSetup:
    """A Hugging Face teacher, fine-tuned once on the recipe's data when asked, then cached."""
    from distill.hf import SentenceEncoder, load_model, save_pretrained

    options: dict[str, Any] = {"num_labels": train.info.num_classes,
                               "trust_remote_code": spec.trust_code}
    if spec.attention:
        options["attn_implementation"] = spec.attention
    if spec.task == "causal-lm":  # next tokens: the vocabulary is the model's own
        options.pop("num_labels")
    if spec.task == "sentence-embedding":
        options.pop("num_labels")
        return TeacherSetup(SentenceEncoder(load_model(spec.model, "base", **options)).eval())
    if spec.finetune is None:
        return TeacherSetup(load_model(spec.model, spec.task, **options).eval())
    folder = cache_dir() / "teachers" / spec_fingerprint(spec, dataset)
    if spec.cache and (folder / "config.json").is_file():
        log.info("teacher: reusing the fine-tuned %s from %s", spec.model, folder)
        return TeacherSetup(load_model(folder, spec.task, **options).eval(), folder)
    model = load_model(spec.model, spec.task, **options)
    log.info("teacher: fine-tuning %s (%d epochs)", spec.model, spec.finetune.epochs)
    result = train_model(model, train, eval=test, progress=progress, description="teacher",
                         **train_kwargs(spec.finetune))
    with distributed.main_first():
        if spec.cache and distributed.is_main():
            save_pretrained(model, folder, tokenizer,
                            metadata={"accuracy": result.metrics.get("accuracy")})
    return TeacherSetup(model.eval(), folder if spec.cache else None, result.history)


def get_teacher(recipe: Recipe, train: ArrayDataset, test: ArrayDataset, progress,
                tokenizer: Any = None) -> TeacherSetup:
    """The recipe's teacher: one model, or an ensemble measured and used as one."""
    spec, dataset = recipe.teacher, _data_key(recipe)
    if not isinstance(spec, TeacherEnsemble):
        return _trained(spec, dataset, train, test, progress, "teacher", tokenizer)
    parts = [
        _trained(member, dataset, train, test, progress, f"teacher member {i + 1}")
        for i, member in enumerate(spec.members)
    ]
    module = Ensemble([p.module for p in parts], combine=spec.combine, weights=spec.weights)
    members = [{"path": str(p.path) if p.path else None} for p in parts]
    return TeacherSetup(module.eval(), None, parts[0].history, members)


def cached_outputs(recipe: Recipe, teacher: nn.Module, data, progress) -> CachedTeacher:
    """The teacher's outputs on the training set, from disk (built or resumed when needed)."""
    spec = recipe.teacher
    kind = f"top{spec.top_k}" if spec.top_k else ""
    if spec.samples:  # with top_k: hybrid
        kind += f"sampled{spec.samples}-T{recipe.loss.temperature:g}-s{recipe.train.seed}"
        kind += "" if spec.sampler == "stratified" else f"-{spec.sampler}"
    kind = kind or "dense"
    sampling = ({"samples": spec.samples, "temperature": recipe.loss.temperature,
                 "seed": recipe.train.seed, "sampler": spec.sampler} if spec.samples else {})
    managed = spec.cache_path is None
    path = spec.cache_path or (
        cache_dir() / "teacher-outputs"
        / f"{teacher_fingerprint(recipe)}-{data_key(recipe.data)}-train-{kind}-{spec.cache_dtype}"
    )
    log.info("teacher outputs: %s", path)
    # a folder distill manages is rebuilt when stale; one the user named is never overwritten
    # under torchrun every rank computes and writes its share of the shards
    # batch_size=None: rows a batch sized by their outputs (a language model's logits are tens
    # of MB a sequence)
    return cache_teacher(teacher, data, path, top_k=spec.top_k, dtype=spec.cache_dtype,
                         **sampling, batch_size=None,
                         progress=progress if distributed.is_main() else False,
                         overwrite=managed, source=teacher)
