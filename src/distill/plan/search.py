"""The planner: which student, deployed how, meets a latency (and size, and retention) budget?

Compute is spent where it decides something:

1. **Screen** (seconds): every candidate is built untrained and deployed (int8 calibration and
   ONNX export included) and its batch-1 latency measured beside the teacher's. Weights do
   not change speed, so candidates over the budget are dropped before any training.
2. **Successive halving** (minutes): the surviving student shapes (widths, or a text
   student's blocks) are distilled for a short budget on 90% of the training set and ranked
   on the other 10%; the better half goes on to a longer budget, until ``finalists`` remain.
   The test set is not looked at.
3. **Final measurement**: each finalist is distilled exactly as its recipe will be (same
   seed, epochs, teacher outputs), cut and recovered, deployed every way that passed the
   screen, and measured side by side with the teacher (in PyTorch, and in ONNX Runtime fp32
   when a finalist runs there) on the test set: accuracy, retention, latency, size.

The result is the Pareto frontier of (retention, latency, size) and the best plan that meets
every constraint, written out as a recipe that ``distill run`` reproduces.
"""

from __future__ import annotations

import logging
import math
import tempfile
from pathlib import Path
from typing import Any

import torch

from distill.api import distill
from distill.evaluate.compare import evaluate_models
from distill.evaluate.latency import measure_latency
from distill.evaluate.metrics import accuracy
from distill.evaluate.predict import predict
from distill.evaluate.size import size_on_disk
from distill.losses import KDLoss
from distill.plan.candidates import Candidate, candidate_recipe, candidates
from distill.plan.frontier import choose, pareto
from distill.recipes.building import build_model, train_kwargs
from distill.recipes.data_specs import reads_text
from distill.recipes.schema import Recipe
from distill.recipes.stage_specs import DistillStage, ExportStage, QuantizeStage
from distill.recipes.stages import apply_stage
from distill.teachers import PrecomputedTeacher

log = logging.getLogger("distill")
SCREEN_SLACK = 1.15  # screened latency may exceed the budget by this much (timing noise)


def _split(train: Any, share: float = 0.1, seed: int = 0) -> tuple[Any, Any]:
    """(fit, held out): a seeded share of the training set set aside (arrays or text)."""
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    cut = len(train) - max(1, int(share * len(train)))
    return train.subset(order[:cut]), train.subset(order[cut:])


def _apply(candidate: Candidate, stages: list, model, recipe: Recipe, teacher, train, test,
           folder: Path, *, train_stages: bool = True):
    """``model`` through ``stages`` (part of ``candidate``'s pipeline), by the same code the
    recipe's stages run; ``train_stages=False`` skips the distillations and quantization-aware
    training (latency only: a QAT student exports to the same int8 graph)."""
    current, fp32 = model, None
    for i, spec in enumerate(candidate_recipe(recipe, candidate, stages).stages):
        trains = isinstance(spec, DistillStage) or (isinstance(spec, QuantizeStage)
                                                    and spec.method == "qat")
        if trains and not train_stages:
            continue
        export_to = folder / f"{candidate.slug}-{i}" if isinstance(spec, ExportStage) else None
        current, _, fp32 = apply_stage(spec, current, recipe, teacher, train, test, fp32=fp32,
                                       export_to=export_to)
    return current


def screen(recipe: Recipe, pool: list[Candidate], teacher, train, test, folder: Path
           ) -> dict[str, Any]:
    """Batch-1 latency and size of every candidate, untrained, measured beside the teacher."""
    ev = recipe.evaluate
    models: dict[str, Any] = {"teacher": teacher}
    for shape in dict.fromkeys(c.shape for c in pool):
        group = [c for c in pool if c.shape == shape]
        spec = candidate_recipe(recipe, group[0], []).student
        untrained = build_model(spec, train.info, recipe.train.seed, teacher)
        for c in group:
            models[c.name] = _apply(c, c.stages, untrained, recipe, teacher, train, test,
                                    folder, train_stages=False)
    log.info("screening %d candidates (latency, %d thread(s))", len(models) - 1, ev.threads)
    latency = measure_latency(models, test, batch_sizes=[1], threads=ev.threads,
                              repeats=ev.latency_repeats)
    return {name: {"latency_ms_p50": latency[name][1]["p50"], "size_bytes": size_on_disk(m)}
            for name, m in models.items()}


def halve(recipe: Recipe, shapes: list[str], pool: list[Candidate], teacher, train,
          rungs: tuple[int, ...], finalists: int, progress) -> list[dict[str, Any]]:
    """Successive halving over student shapes (widths, or blocks kept): short distillations
    ranked on held-out training data; returns one record per rung (who trained, their
    accuracy, who went on)."""
    fit, held_out = _split(train)
    signal = PrecomputedTeacher.from_module(teacher, fit)
    records, alive = [], list(shapes)
    for epochs in rungs:
        if len(alive) <= finalists:
            break
        scores = {}
        for shape in alive:
            spec = candidate_recipe(recipe, next(c for c in pool if c.shape == shape)).student
            student = build_model(spec, train.info, recipe.train.seed, teacher)
            settings = {**train_kwargs(recipe.train), "epochs": epochs}
            distill(signal, student, fit, loss=KDLoss(recipe.loss.temperature,
                                                      recipe.loss.alpha),
                    progress=progress, **settings)
            pred = predict(student, held_out)
            scores[shape] = accuracy(pred.logits, pred.labels)
            log.info("rung of %d epoch(s): %s -> %.4f held-out", epochs, shape, scores[shape])
        keep = max(finalists, math.ceil(len(alive) / 2))
        alive = sorted(alive, key=lambda w: -scores[w])[:keep]
        records.append({"epochs": epochs, "held_out_accuracy": dict(scores), "kept": alive})
    return records


ONNX_TEACHER = "teacher, onnx fp32"


def _onnx_teacher(teacher, test, folder: Path):
    """The teacher exported to ONNX Runtime fp32 (checked against PyTorch), for the ratios."""
    from distill.artifacts import load
    from distill.quantize import to_onnx
    from distill.recipes.stages import example_batch

    with torch.no_grad():
        to_onnx(teacher, example_batch(test), folder / "teacher-onnx")
    return load(folder / "teacher-onnx")


def _plannable(recipe: Recipe) -> None:
    """What the planner searches: image and table students by width, Hugging Face text
    classifiers by blocks kept; a teacher to distil from; every training sample labeled."""
    from distill.recipes.schema import HFLayersStudent, HFTeacher

    if recipe.self_distill is not None or recipe.data.labeled is not None:
        raise ValueError("the planner needs a [teacher] and fully labeled data (for now)")
    if reads_text(recipe.data):
        teacher = recipe.teacher
        if not (isinstance(teacher, HFTeacher) and teacher.task == "sequence-classification"
                and isinstance(recipe.student, HFLayersStudent)):
            raise ValueError(
                "the planner plans text students as a Hugging Face sequence classifier's own "
                "blocks: [teacher] arch = 'hf' (task 'sequence-classification') and [student] "
                "arch = 'hf-layers'; it also plans 'mlp' and 'cnn' students on images and "
                "tables")
        _check_family(teacher)


def _check_family(spec: Any) -> None:
    """Before any fine-tuning: the teacher's model type is one whose blocks the planner can
    cut (its config.json read, nothing run)."""
    from distill.hf.layers import FAMILIES

    try:
        from transformers import AutoConfig

        model_type = AutoConfig.from_pretrained(
            str(spec.model), trust_remote_code=spec.trust_code).model_type
    except Exception:  # unreadable here (say, a hub id offline): the teacher's loading says why
        return
    if model_type not in FAMILIES:
        raise ValueError(f"the planner cuts the blocks of {', '.join(sorted(FAMILIES))} "
                         f"models; this teacher is model_type {model_type!r}")


def _teacher_blocks(teacher) -> int | None:
    from distill.hf.io import is_hf_model
    from distill.hf.layers import block_names, family_of

    if not is_hf_model(teacher):
        return None
    family_of(teacher)  # checked before the teacher was loaded (_check_family); kept as a guard
    return len(block_names(teacher))


def plan(recipe: Recipe, *, max_latency_ms: float | None = None,
         min_speedup: float | None = None, max_size_mb: float | None = None,
         min_retention: float | None = None, widths: tuple[float, ...] | None = None,
         deploy: tuple[str, ...] | None = None, prune: tuple[float, ...] | None = None,
         blocks: tuple[int, ...] | None = None, heads: tuple[float, ...] | None = None,
         block_choice: tuple[str, ...] | None = None, finalists: int = 2,
         rungs: tuple[int, ...] = (1, 3), progress: bool | None = None) -> dict[str, Any]:
    """Search the candidates for ``recipe``'s task under the budget; the plan as JSON values."""
    from distill.recipes.steps import distil_student, load_data
    from distill.recipes.teacher_setup import get_teacher

    if (max_latency_ms is None) == (min_speedup is None):
        raise ValueError("give a latency budget: max_latency_ms or min_speedup (one of them)")
    _plannable(recipe)
    kwargs = {k: v for k, v in (("widths", widths), ("deploy", deploy), ("prune", prune),
                                ("blocks", blocks), ("heads", heads)) if v is not None}
    train, test, tokenizer = load_data(recipe)
    setup = get_teacher(recipe, train, test, progress, tokenizer)
    teacher = setup.module.eval()
    if block_choice is not None:
        kwargs["block_choice"] = block_choice
        if "importance" in block_choice:  # Minitron: how much each block turns its input
            from distill.hf.pruning import block_importance

            kwargs["importance"] = block_importance(teacher, train)
    pool = candidates(recipe, teacher_blocks=_teacher_blocks(teacher), **kwargs)
    with tempfile.TemporaryDirectory() as tmp:
        screened = screen(recipe, pool, teacher, train, test, Path(tmp))
    budget = (max_latency_ms if max_latency_ms is not None
              else screened["teacher"]["latency_ms_p50"] / min_speedup)
    size_limit = None if max_size_mb is None else max_size_mb * 1e6
    passing = [c for c in pool if screened[c.name]["latency_ms_p50"] <= budget * SCREEN_SLACK
               and (size_limit is None or screened[c.name]["size_bytes"] <= size_limit)]
    shapes_alive = list(dict.fromkeys(c.shape for c in sorted(
        passing, key=lambda c: -(c.width or 0.0))))
    rung_records = halve(recipe, shapes_alive, passing, teacher, train, rungs, finalists,
                         progress) if shapes_alive else []
    chosen = rung_records[-1]["kept"] if rung_records else shapes_alive
    rows: list[dict[str, Any]] = []
    if chosen:
        deployed: dict[str, Any] = {"teacher": teacher}
        with tempfile.TemporaryDirectory() as tmp:
            for shape in chosen:
                group = [c for c in passing if c.shape == shape]
                spec = candidate_recipe(recipe, group[0], [])
                log.info("finalist: %s, distilled as its recipe will be", shape)
                student, _ = distil_student(spec, setup, train.info, train, test, None,
                                            progress)
                for cut in sorted({c.cut for c in group}):
                    members = [c for c in group if c.cut == cut]
                    base = student
                    if any(cut):  # cut and recovered once, then deployed each way
                        log.info("finalist: %s cut %s, recovered", shape, members[0].name)
                        first = members[0]
                        base = _apply(first, first.stages[:first.cut_stages], student, recipe,
                                      teacher, train, test, Path(tmp))
                    for c in members:
                        deployed[c.name] = _apply(c, c.deploy_stages, base, recipe, teacher,
                                                  train, test, Path(tmp))
            if any(c.deploy.startswith("onnx") for c in passing if c.shape in chosen):
                # the teacher in ONNX Runtime fp32 too: a reader on another CPU compares the
                # runtimes' own gains, not just the speed-up over PyTorch eager
                deployed[ONNX_TEACHER] = _onnx_teacher(teacher, test, Path(tmp))
            ev = recipe.evaluate
            measured = evaluate_models(deployed, test, reference="teacher",
                                       batch_sizes=ev.batch_sizes, threads=ev.threads,
                                       latency_repeats=ev.latency_repeats)
        teacher_row = measured.pop("teacher")
        onnx_teacher = measured.pop(ONNX_TEACHER, None)
        for c in (c for c in passing if c.name in measured):
            m = measured[c.name]
            rows.append({"name": c.name, "width": c.width, "shape": c.shape, "label": c.label,
                         "prune": c.prune, "heads": c.heads, "deploy": c.deploy,
                         "student": c.student, "stages": c.stages,
                         "accuracy": m["accuracy"], "agreement": m.get("agreement"),
                         "retention": m["accuracy"] / teacher_row["accuracy"],
                         "latency_ms_p50": m["latency_ms_p50"],
                         "latency_ms_p95": m["latency_ms_p95"], "size_bytes": m["size_bytes"],
                         "speedup": teacher_row["latency_ms_p50"] / m["latency_ms_p50"],
                         "speedup_vs_onnx_teacher": None if onnx_teacher is None else
                         onnx_teacher["latency_ms_p50"] / m["latency_ms_p50"]})
    else:
        teacher_row = {"latency_ms_p50": screened["teacher"]["latency_ms_p50"]}
        onnx_teacher = None
    limits = {"max_latency_ms": budget, "max_size_bytes": size_limit,
              "min_retention": min_retention}
    frontier = pareto(rows)
    best = choose(rows, limits)
    from distill.evaluate.hardware import describe_cpu

    return {
        "recipe": recipe.name, "budget": limits, "min_speedup": min_speedup,
        "cpu": describe_cpu(), "threads": recipe.evaluate.threads,
        "teacher": teacher_row, "teacher_onnx_fp32": onnx_teacher,
        "screen_teacher": screened["teacher"],
        "screen": {c.name: {**screened[c.name],
                                                    "passed": c in passing} for c in pool},
        "rungs": rung_records, "finalists": rows, "frontier": [r["name"] for r in frontier],
        "recommended": best["name"] if best else None,
    }
