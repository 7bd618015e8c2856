"""Pipelines: the stages a recipe lists after its student is distilled, run in order.

Each stage starts from the previous stage's model and leaves a checkpoint in
``RUN/stages/NN-kind/`` — its model and ``stage.json`` (written last, so a folder with one is
finished). A stage's fingerprint covers the recipe up to and including it: ``distill run
--resume`` reuses a finished stage whose fingerprint still matches and reruns it, and every
stage after it, otherwise. Stage 0 is the distillation itself.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from distill import atomic
from distill.api import distill
from distill.artifacts import load, save
from distill.batches import Batches
from distill.hf.io import is_hf_model
from distill.losses import KDLoss
from distill.recipes.building import train_kwargs
from distill.recipes.schema import Recipe
from distill.recipes.stage_specs import DistillStage, ExportStage, PruneStage, QuantizeStage

log = logging.getLogger("distill")
STAGES = "stages"


@dataclass
class Stage:
    """A finished stage: what it was, where its checkpoint is, what it trained."""

    index: int
    label: str
    folder: Path
    model: nn.Module
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    reused: bool = False
    fp32: nn.Module | None = None  # a dynamic QAT stage's trained weights, for an int8 export
    check: dict[str, Any] | None = None  # an export's predictions against PyTorch's


def label(spec: Any) -> str:
    if isinstance(spec, PruneStage):
        heads = " heads" if spec.target == "heads" else ""
        return f"prune {spec.method}{heads} {spec.ratio:.0%}"
    if isinstance(spec, DistillStage):
        return "distill" + (f" {spec.epochs} epochs" if spec.epochs else "")
    if isinstance(spec, QuantizeStage):
        return f"quantize {spec.method}"
    if isinstance(spec, ExportStage):
        return ("export onnx" + ("" if spec.int8 == "none" else f" int8 {spec.int8}")
                + (", vocabulary trimmed" if spec.trim_vocabulary else ""))
    return "distill"


def fingerprint(recipe: Recipe, stages: int) -> str:
    """What decides the model after ``stages`` pipeline stages (0: the distilled student)."""
    body = recipe.model_dump(mode="json", exclude={"name", "evaluate", "baseline"})
    body["stages"] = body["stages"][:stages]
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def folder_of(out: Path, index: int, kind: str) -> Path:
    return out / STAGES / f"{index:02d}-{kind}"


def reuse(out: Path, index: int, kind: str, recipe: Recipe) -> Stage | None:
    """The finished stage ``index`` if its checkpoint matches the recipe, else None."""
    folder = folder_of(out, index, kind)
    try:
        info = json.loads((folder / "stage.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if info.get("fingerprint") != fingerprint(recipe, index):
        return None
    fp32 = load(folder / "fp32") if (folder / "fp32").is_dir() else None
    log.info("stage %d (%s): reusing %s", index, info["label"], folder)
    return Stage(index, info["label"], folder, load(folder / "model"), info.get("history", []),
                 info.get("seconds", 0.0), True, fp32, info.get("check"))


def checkpoint(out: Path, recipe: Recipe, stage: Stage, kind: str, onnx: Path | None = None
               ) -> Stage:
    """Write ``stage``'s model (or move its exported ONNX folder) and then its stage.json."""
    folder = folder_of(out, stage.index, kind)
    shutil.rmtree(folder, ignore_errors=True)  # a stale or half-written one
    folder.mkdir(parents=True)
    if onnx is not None:
        shutil.move(str(onnx), str(folder / "model"))
        stage.model = load(folder / "model")
    else:
        save(stage.model, folder / "model")
    if stage.fp32 is not None:
        save(stage.fp32, folder / "fp32")
    atomic.write_json(folder / "stage.json", {
        "index": stage.index, "kind": kind, "label": stage.label,
        "fingerprint": fingerprint(recipe, stage.index), "history": stage.history,
        "seconds": stage.seconds, "check": stage.check})
    stage.folder = folder
    return stage


def example_batch(data: Any) -> Any:
    """Two samples' inputs: what tracing (structured pruning, ONNX export) runs the model on."""
    return next(iter(Batches(data, 2, shuffle=False))).inputs


def _kd(recipe: Recipe) -> KDLoss:
    return KDLoss(recipe.loss.temperature, recipe.loss.alpha)


def _settings(recipe: Recipe, epochs: int | None, lr: float | None) -> dict[str, Any]:
    settings = train_kwargs(recipe.train)
    if epochs is not None:
        settings["epochs"] = epochs
    if lr is not None:
        settings["lr"] = lr
    return settings


def _prune(spec: PruneStage, model: nn.Module, train: Any) -> nn.Module:
    from distill.prune import prune_once

    if spec.target == "heads":
        if not is_hf_model(model):
            raise ValueError("a prune stage with target = 'heads' needs a Hugging Face "
                             f"transformer; the current student is a {type(model).__name__}")
        from distill.hf.pruning import prune_heads

        return prune_heads(copy.deepcopy(model), spec.ratio, importance=spec.importance,
                           data=train)
    example = None if is_hf_model(model) else example_batch(train)
    return prune_once(copy.deepcopy(model), spec.method, spec.ratio,
                      importance=spec.importance, data=train, example_inputs=example)


def _quantize(spec: QuantizeStage, model: nn.Module, recipe: Recipe, teacher: nn.Module,
              train: Any, test: Any, progress) -> tuple[nn.Module, list, nn.Module | None]:
    """(the quantized model, the QAT history, the QAT's fp32 weights for an export)."""
    from distill import quantize

    hf = is_hf_model(model)
    skip = ["classifier"] if hf and hasattr(model, "classifier") else []
    if spec.method == "dynamic":
        return quantize.quantize_dynamic(model, skip=skip), [], None
    if spec.method == "static":
        return quantize.quantize_static(model, train, batches=spec.calibration_batches), [], None
    if spec.method in ("float16", "bfloat16"):
        return quantize.cast(model, spec.method), [], None
    if spec.method in ("int8-weights", "int4-weights"):
        bits = 8 if spec.method == "int8-weights" else 4
        return quantize.quantize_weights(model, bits=bits, group_size=spec.group_size,
                                         skip=skip), [], None
    prepared = quantize.prepare_qat(model, None if hf else train, skip=skip)
    fitted = distill(teacher, prepared, train, eval=test, loss=_kd(recipe), progress=progress,
                     **_settings(recipe, spec.epochs, spec.lr))
    fp32 = quantize.without_fake_quant(prepared) if hf else None
    return quantize.convert_qat(prepared, model), fitted.history, fp32


def apply_stage(spec: Any, current: nn.Module, recipe: Recipe, teacher: nn.Module, train: Any,
                test: Any, *, fp32: nn.Module | None = None, export_to: Path | None = None,
                progress=None, records: dict[str, Any] | None = None
                ) -> tuple[nn.Module, list, nn.Module | None]:
    """One stage on ``current``: (its model, what it trained, a QAT stage's fp32 weights).

    An export writes the ONNX folder ``export_to`` (from ``fp32`` when a QAT stage left one),
    with ``records`` (the data's ``preprocessing`` and ``class_names``) in its config, and
    returns the exported model. The planner applies stages with this same function, so a
    plan's numbers are the ones its recipe reproduces.
    """
    if isinstance(spec, PruneStage):
        return _prune(spec, current, train), [], None
    if isinstance(spec, DistillStage):
        model = copy.deepcopy(current)
        history = distill(teacher, model, train, eval=test, loss=_kd(recipe), progress=progress,
                          **_settings(recipe, spec.epochs, spec.lr)).history
        return model, history, None
    if isinstance(spec, QuantizeStage):
        return _quantize(spec, current, recipe, teacher, train, test, progress)
    exported, _, _ = export(spec, current, train, test, export_to, fp32=fp32, records=records)
    return exported, [], None


def export(spec: ExportStage, current: nn.Module, train: Any, test: Any,
           export_to: Path | None, *, fp32: nn.Module | None = None,
           records: dict[str, Any] | None = None
           ) -> tuple[nn.Module, nn.Module, dict[str, Any] | None]:
    """(the exported model, the PyTorch model it was exported from, the vocabulary trimming's
    counts when asked for)."""
    from distill.quantize import to_onnx

    if export_to is None:
        raise ValueError("an export stage needs a folder to write (export_to)")
    shutil.rmtree(export_to, ignore_errors=True)
    int8 = {"none": False}.get(spec.int8, spec.int8)
    source, trimmed = fp32 if fp32 is not None else current, None
    if spec.trim_vocabulary:
        from distill.hf.vocabulary import remapped_vocabulary

        source, trimmed = remapped_vocabulary(source, train)
        log.info("vocabulary: %d of %d embedding rows kept (%d -> %d parameters)",
                 trimmed["rows_after"], trimmed["rows_before"], trimmed["parameters_before"],
                 trimmed["parameters_after"])
    with torch.no_grad():
        to_onnx(source, example_batch(test), export_to, int8=int8,
                calibration=train, calibration_batches=spec.calibration_batches,
                **(records or {}))
    return load(export_to), source, trimmed


FP32_AGREEMENT = 0.999  # an fp32 export may flip a near-tie, not a model's answers


def _agreement(a: nn.Module, b: nn.Module, test: Any) -> dict[str, float]:
    """Top-1 agreement of two models on the test set, and ``b``'s accuracy."""
    from distill.evaluate.predict import predict

    first, second = predict(a, test), predict(b, test)
    same = (first.logits.argmax(-1) == second.logits.argmax(-1)).float().mean()
    out = {"agreement_with_untrimmed": float(same)}
    if second.labels is not None:
        out["accuracy"] = float((second.logits.argmax(-1) == second.labels).float().mean())
    return out


def export_check(source: nn.Module, exported: nn.Module, test: Any, int8: bool
                 ) -> dict[str, Any] | None:
    """The exported model against the PyTorch model it came from, on the whole test set:
    both accuracies and their top-1 agreement. An fp32 export that agrees on fewer than
    99.9% of the test samples is refused (the graph does not compute what the model does on
    some inputs); an int8 one is recorded as measured. None for outputs that are not one
    prediction per sample with labels (language models)."""
    from distill.evaluate.predict import predict

    before, after = predict(source, test), predict(exported, test)
    if before.labels is None or before.logits.dim() != 2:
        return None
    agree = float((before.logits.argmax(-1) == after.logits.argmax(-1)).float().mean())
    found = {"accuracy_pytorch": float((before.logits.argmax(-1) == before.labels).float()
                                       .mean()),
             "accuracy_exported": float((after.logits.argmax(-1) == after.labels).float()
                                        .mean()),
             "agreement": agree, "samples": len(before.labels), "int8": int8,
             "fp32_agreement_required": None if int8 else FP32_AGREEMENT}
    if not int8 and agree < FP32_AGREEMENT:
        raise ValueError(
            f"the exported ONNX model agrees with PyTorch on {100 * agree:.2f}% of the "
            f"{len(before.labels)} test samples (at least {100 * FP32_AGREEMENT:.1f}% is "
            "required of an fp32 export): it does not compute what the model does")
    return found


def run_stages(recipe: Recipe, out: Path, student: nn.Module, teacher: nn.Module, train: Any,
               test: Any, *, resume: bool, progress,
               records: dict[str, Any] | None = None) -> list[Stage]:
    """Every ``[[stages]]`` entry in turn, from the distilled ``student``; the finished stages
    in order (the last one's model is the run's student; ``records``: see apply_stage)."""
    stages: list[Stage] = []
    current, fp32, fresh = student, None, not resume
    for index, spec in enumerate(recipe.stages, 1):
        if not fresh:
            found = reuse(out, index, spec.kind, recipe)
            if found is not None:
                stages.append(found)
                current, fp32 = found.model, found.fp32
                continue
            fresh = True  # everything after a rerun stage is rerun too
        name = label(spec)
        log.info("stage %d: %s", index, name)
        started = time.perf_counter()
        check = None
        if isinstance(spec, ExportStage):
            onnx = out / STAGES / f".export-{index:02d}"
            model, source, trimmed = export(spec, current, train, test, onnx, fp32=fp32,
                                            records=records)
            history, new_fp32 = [], None
            check = export_check(source, model, test, spec.int8 != "none")
            if check is not None and trimmed is not None:  # what the trimming alone changed
                untrimmed = fp32 if fp32 is not None else current
                check["trimmed_vocabulary"] = {
                    **trimmed, **_agreement(untrimmed, source, test)}
            if check is not None:
                log.info("stage %d: the export agrees with PyTorch on %.2f%% of the test set "
                         "(accuracy %.2f%% -> %.2f%%)", index, 100 * check["agreement"],
                         100 * check["accuracy_pytorch"], 100 * check["accuracy_exported"])
        else:
            onnx = None
            model, history, new_fp32 = apply_stage(spec, current, recipe, teacher, train, test,
                                                   fp32=fp32, progress=progress)
        stage = Stage(index, name, out, model, history, time.perf_counter() - started,
                      fp32=new_fp32, check=check)
        stages.append(checkpoint(out, recipe, stage, spec.kind, onnx))
        current, fp32 = stage.model, new_fp32
    return stages
