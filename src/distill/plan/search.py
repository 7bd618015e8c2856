"""The planner: which student, deployed how, meets a latency (and size, and retention) budget?

Compute is spent where it decides something:

1. **Screen** (seconds): every candidate is built untrained and deployed (int8 calibration and
   ONNX export included) and its batch-1 latency measured beside the teacher's. Weights do
   not change speed, so candidates over the budget are dropped before any training.
2. **Successive halving** (minutes): the surviving student widths are distilled for a short
   budget on 90% of the training set and ranked on the other 10%; the better half goes on
   to a longer budget, until ``finalists`` remain. The test set is not looked at.
3. **Final measurement**: each finalist is distilled exactly as its recipe will be (same
   seed, epochs, teacher outputs), deployed every way that passed the screen, and measured
   side by side with the teacher on the test set: accuracy, retention, latency, size.

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
from distill.data import ArrayDataset
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
from distill.recipes.stage_specs import DistillStage, ExportStage
from distill.recipes.stages import apply_stage
from distill.teachers import PrecomputedTeacher

log = logging.getLogger("distill")
SCREEN_SLACK = 1.15  # screened latency may exceed the budget by this much (timing noise)


def _split(train: ArrayDataset, share: float = 0.1, seed: int = 0
           ) -> tuple[ArrayDataset, ArrayDataset]:
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    cut = len(train) - max(1, int(share * len(train)))
    return (ArrayDataset(train.inputs[order[:cut]], train.labels[order[:cut]], train.info),
            ArrayDataset(train.inputs[order[cut:]], train.labels[order[cut:]], train.info))


def _apply(candidate: Candidate, stages: list, model, recipe: Recipe, teacher, train, test,
           folder: Path, *, train_stages: bool = True):
    """``model`` through ``stages`` (part of ``candidate``'s pipeline), by the same code the
    recipe's stages run; ``train_stages=False`` skips the distillations (latency only)."""
    current = model
    for i, spec in enumerate(candidate_recipe(recipe, candidate, stages).stages):
        if isinstance(spec, DistillStage) and not train_stages:
            continue
        export_to = folder / f"{candidate.slug}-{i}" if isinstance(spec, ExportStage) else None
        current, _, _ = apply_stage(spec, current, recipe, teacher, train, test,
                                    export_to=export_to)
    return current


def screen(recipe: Recipe, pool: list[Candidate], teacher, train, test, folder: Path
           ) -> dict[str, Any]:
    """Batch-1 latency and size of every candidate, untrained, measured beside the teacher."""
    ev = recipe.evaluate
    models: dict[str, Any] = {"teacher": teacher}
    for width in sorted({c.width for c in pool}):
        group = [c for c in pool if c.width == width]
        spec = candidate_recipe(recipe, group[0], []).student
        untrained = build_model(spec, train.info, recipe.train.seed)
        for c in group:
            models[c.name] = _apply(c, c.stages, untrained, recipe, teacher, train, test,
                                    folder, train_stages=False)
    log.info("screening %d candidates (latency, %d thread(s))", len(models) - 1, ev.threads)
    latency = measure_latency(models, test, batch_sizes=[1], threads=ev.threads,
                              repeats=ev.latency_repeats)
    return {name: {"latency_ms_p50": latency[name][1]["p50"], "size_bytes": size_on_disk(m)}
            for name, m in models.items()}


def halve(recipe: Recipe, widths: list[float], pool: list[Candidate], teacher, train,
          rungs: tuple[int, ...], finalists: int, progress) -> list[dict[str, Any]]:
    """Successive halving over student widths: short distillations ranked on held-out
    training data; returns one record per rung (who trained, their accuracy, who went on)."""
    fit, held_out = _split(train)
    signal = PrecomputedTeacher.from_module(teacher, fit)
    records, alive = [], list(widths)
    for epochs in rungs:
        if len(alive) <= finalists:
            break
        scores = {}
        for width in alive:
            spec = candidate_recipe(recipe, next(c for c in pool if c.width == width)).student
            student = build_model(spec, train.info, recipe.train.seed)
            settings = {**train_kwargs(recipe.train), "epochs": epochs}
            distill(signal, student, fit, loss=KDLoss(recipe.loss.temperature,
                                                      recipe.loss.alpha),
                    progress=progress, **settings)
            pred = predict(student, held_out)
            scores[width] = accuracy(pred.logits, pred.labels)
            log.info("rung of %d epoch(s): width %g -> %.4f held-out", epochs, width,
                     scores[width])
        keep = max(finalists, math.ceil(len(alive) / 2))
        alive = sorted(alive, key=lambda w: -scores[w])[:keep]
        records.append({"epochs": epochs, "held_out_accuracy": {str(w): s for w, s in
                                                                scores.items()},
                        "kept": alive})
    return records


def plan(recipe: Recipe, *, max_latency_ms: float | None = None,
         min_speedup: float | None = None, max_size_mb: float | None = None,
         min_retention: float | None = None, widths: tuple[float, ...] | None = None,
         deploy: tuple[str, ...] | None = None, prune: tuple[float, ...] | None = None,
         finalists: int = 2,
         rungs: tuple[int, ...] = (1, 3), progress: bool | None = None) -> dict[str, Any]:
    """Search the candidates for ``recipe``'s task under the budget; the plan as JSON values."""
    from distill.recipes.steps import distil_student, load_data
    from distill.recipes.teacher_setup import get_teacher

    if (max_latency_ms is None) == (min_speedup is None):
        raise ValueError("give a latency budget: max_latency_ms or min_speedup (one of them)")
    if (reads_text(recipe.data) or recipe.self_distill is not None
            or recipe.data.labeled is not None):
        raise ValueError("the planner handles image and tabular data, fully labeled, with a "
                         "[teacher] (for now)")
    kwargs = {k: v for k, v in (("widths", widths), ("deploy", deploy), ("prune", prune))
              if v is not None}
    pool = candidates(recipe, **kwargs)
    train, test, _ = load_data(recipe)
    setup = get_teacher(recipe, train, test, progress)
    teacher = setup.module.eval()
    with tempfile.TemporaryDirectory() as tmp:
        screened = screen(recipe, pool, teacher, train, test, Path(tmp))
    budget = (max_latency_ms if max_latency_ms is not None
              else screened["teacher"]["latency_ms_p50"] / min_speedup)
    size_limit = None if max_size_mb is None else max_size_mb * 1e6
    passing = [c for c in pool if screened[c.name]["latency_ms_p50"] <= budget * SCREEN_SLACK
               and (size_limit is None or screened[c.name]["size_bytes"] <= size_limit)]
    widths_alive = sorted({c.width for c in passing}, reverse=True)
    rung_records = halve(recipe, widths_alive, passing, teacher, train, rungs, finalists,
                         progress) if widths_alive else []
    chosen = rung_records[-1]["kept"] if rung_records else widths_alive
    rows: list[dict[str, Any]] = []
    if chosen:
        deployed: dict[str, Any] = {"teacher": teacher}
        with tempfile.TemporaryDirectory() as tmp:
            for width in chosen:
                group = [c for c in passing if c.width == width]
                spec = candidate_recipe(recipe, group[0], [])
                log.info("finalist: width %g, distilled as its recipe will be", width)
                student, _ = distil_student(spec, setup, train.info, train, test, None,
                                            progress)
                for ratio in sorted({c.prune for c in group}):
                    members = [c for c in group if c.prune == ratio]
                    base = student
                    if ratio:  # pruned and recovered once, then deployed each way
                        log.info("finalist: width %g pruned %.0f%%, recovered", width,
                                 100 * ratio)
                        base = _apply(members[0], members[0].stages[:2], student, recipe,
                                      teacher, train, test, Path(tmp))
                    for c in members:
                        deployed[c.name] = _apply(c, c.deploy_stages, base, recipe, teacher,
                                                  train, test, Path(tmp))
            ev = recipe.evaluate
            measured = evaluate_models(deployed, test, reference="teacher",
                                       batch_sizes=ev.batch_sizes, threads=ev.threads,
                                       latency_repeats=ev.latency_repeats)
        teacher_row = measured.pop("teacher")
        for c in (c for c in passing if c.name in measured):
            m = measured[c.name]
            rows.append({"name": c.name, "width": c.width, "prune": c.prune,
                         "deploy": c.deploy,
                         "student": c.student, "stages": c.stages,
                         "accuracy": m["accuracy"], "agreement": m.get("agreement"),
                         "retention": m["accuracy"] / teacher_row["accuracy"],
                         "latency_ms_p50": m["latency_ms_p50"],
                         "latency_ms_p95": m["latency_ms_p95"], "size_bytes": m["size_bytes"],
                         "speedup": teacher_row["latency_ms_p50"] / m["latency_ms_p50"]})
    else:
        teacher_row = {"latency_ms_p50": screened["teacher"]["latency_ms_p50"]}
    limits = {"max_latency_ms": budget, "max_size_bytes": size_limit,
              "min_retention": min_retention}
    frontier = pareto(rows)
    best = choose(rows, limits)
    return {
        "recipe": recipe.name, "budget": limits, "min_speedup": min_speedup,
        "teacher": teacher_row, "screen_teacher": screened["teacher"],
        "screen": {c.name: {**screened[c.name],
                                                    "passed": c in passing} for c in pool},
        "rungs": rung_records, "finalists": rows, "frontier": [r["name"] for r in frontier],
        "recommended": best["name"] if best else None,
    }
