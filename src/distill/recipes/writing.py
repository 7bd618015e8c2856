"""The run's last step: the student folder, plots, ``report.md``, ``report.html`` and, last
of all, ``metrics.json`` — every file atomically, so a folder with ``metrics.json`` is a
complete run."""

from __future__ import annotations

import datetime as dt
import os
import platform
from typing import Any

import torch

from distill import __version__, atomic
from distill.artifacts import save
from distill.recipes.steps import RunState
from distill.report.html import render_html
from distill.report.markdown import render_report
from distill.report.plots import accuracy_vs_latency, training_curves

PLOTS = {
    "accuracy against latency": "plots/accuracy_vs_latency.png",
    "training curves": "plots/training_curves.png",
}


def environment() -> dict[str, Any]:
    from distill.evaluate.hardware import cpu_features, describe_cpu

    cpu = cpu_features()
    return {
        "machine": f"{platform.machine()} {platform.processor() or platform.system()}".strip(),
        "cpu_count": os.cpu_count(),
        # a speed-up holds on CPUs with the same instruction sets (int8: VNNI/AMX or not)
        "cpu": describe_cpu(cpu),
        "cpu_features": cpu["features"],
        "torch": torch.__version__,
        "python": platform.python_version(),
        "distill": __version__,
    }


def _record(state: RunState) -> dict[str, Any]:
    """The measurements plus what produced them: recipe, histories, stages, data, machine."""
    recipe, out, metrics = state.recipe, state.out, state.metrics
    if state.stages:
        metrics["pipeline"] = [{"stage": s.index, "label": s.label, "seconds": s.seconds,
                                "reused": s.reused, "folder": str(s.folder.relative_to(out)),
                                **({"export_check": s.check} if s.check else {})}
                               for s in state.stages]
    metrics.update(
        name=recipe.name or out.name,
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        environment=environment(),
        history=state.histories,
        recipe=recipe.model_dump(mode="json"),
        teacher_path=str(state.setup.path) if state.setup.path else None,
    )
    if state.setup.members:
        metrics["teacher_members"] = state.setup.members
    records = state.data_records
    metrics["data"] = {"format": recipe.data.format,
                       "class_names": records.get("class_names", []),
                       "preprocessing": records.get("preprocessing")}
    return metrics


def save_student(state: RunState) -> None:
    """The shipped student in the format it runs in: the ONNX folder after an export stage,
    a Hugging Face folder with its tokenizer (no distill needed to open it), else distill's."""
    student, folder = state.final_student, state.out / "student"
    metadata = {**state.headline, **state.data_records}
    if state.stages and state.stages[-1].label.startswith("export"):
        atomic.copy_tree(state.stages[-1].folder / "model", folder)
    elif state.tokenizer is not None and getattr(student, "distill_quantization", None) is None:
        from distill.hf import save_pretrained

        save_pretrained(student, folder, state.tokenizer, metadata=metadata)
    else:
        save(student, folder, metadata=metadata)


def write_step(state: RunState) -> None:
    """Student, plots and reports, then ``metrics.json``."""
    out, metrics = state.out, _record(state)
    save_student(state)
    plots = dict(PLOTS)
    if "accuracy" in metrics["student"]:
        accuracy_vs_latency(metrics, out / plots["accuracy against latency"])
    else:  # sentence embeddings: no accuracy to plot against latency
        del plots["accuracy against latency"]
    training_curves(state.histories, out / plots["training curves"])
    metrics["recipe_text"] = state.recipe_text
    atomic.write_text(out / "report.md", render_report(metrics, state.recipe_text, plots))
    atomic.write_text(out / "report.html", render_html(metrics, state.recipe_text))
    atomic.write_json(out / "metrics.json", metrics)
