"""A recipe that distils sentence embeddings: no labels, no classifier metrics.

The student learns the teacher's embeddings of the training text; the run folder holds the
student as a sentence-transformers folder, ``metrics.json`` with cosine agreement and
nearest-neighbour overlap on held-out text (before and after distillation), size, latency.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

from distill import atomic
from distill.api import distill
from distill.engine import distributed
from distill.recipes.building import build_model, train_kwargs
from distill.recipes.schema import Recipe
from distill.recipes.teacher_setup import get_teacher
from distill.report.html import render_html
from distill.report.markdown import render_report
from distill.report.plots import training_curves

log = logging.getLogger("distill")


def run_embedding(recipe: Recipe, out: Path, recipe_text: str, progress, train, test,
                  tokenizer, environment: dict[str, Any]) -> dict[str, Any]:
    from distill.hf import (
        EmbeddingLoss,
        compare_embeddings,
        embed,
        embedding_agreement,
        save_pretrained,
    )

    setup = get_teacher(recipe, train, test, progress, tokenizer)
    teacher = setup.module
    student = build_model(recipe.student, train.info, recipe.train.seed, teacher)
    held_out = test.unlabeled()
    teacher_embeddings = embed(teacher, held_out)
    before = embedding_agreement(embed(student, held_out), teacher_embeddings)
    loss = EmbeddingLoss(recipe.loss.distance, student_width=student.width,
                         teacher_width=teacher.width)
    log.info("student: learning the teacher's sentence embeddings (%d epochs, %s)",
             recipe.train.epochs, recipe.loss.distance)
    distilled = distill(teacher, student, train.unlabeled(), loss=loss,
                        checkpoint_dir=out / "checkpoints" / "student", progress=progress,
                        precompute_teacher=recipe.teacher.outputs == "precomputed",
                        **train_kwargs(recipe.train))
    if not distributed.is_main():  # under torchrun rank 0 measures and writes
        return {}
    ev = recipe.evaluate
    metrics = compare_embeddings(teacher, student, held_out, batch_sizes=ev.batch_sizes,
                                 threads=ev.threads, latency_repeats=ev.latency_repeats)
    metrics["student_before_distillation"] = before
    metrics.update(
        task="sentence-embedding",
        name=recipe.name or out.name,
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        environment=environment,
        history={"student": distilled.history},
        recipe=recipe.model_dump(mode="json"),
        teacher_path=None,
    )
    save_pretrained(student, out / "student", tokenizer,
                    metadata={k: v for k, v in metrics["student"].items() if "@" in k
                              or k == "cosine"})
    plots = {"training curves": "plots/training_curves.png"}
    training_curves({"student": distilled.history}, out / plots["training curves"])
    metrics["recipe_text"] = recipe_text
    atomic.write_text(out / "report.md", render_report(metrics, recipe_text, plots))
    atomic.write_text(out / "report.html", render_html(metrics, recipe_text))
    atomic.write_json(out / "metrics.json", metrics)
    return metrics
