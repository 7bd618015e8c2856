"""Teacher, student (and baseline) evaluated side by side, with the ratios that sum them up."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from distill.evaluate.chance import check_chance, near_chance_warning
from distill.evaluate.diagnostics import diagnose
from distill.evaluate.latency import measure_latency
from distill.evaluate.metrics import classification_metrics
from distill.evaluate.predict import Predictions, predict
from distill.evaluate.size import count_parameters, size_on_disk
from distill.evaluate.uncertainty import accuracy_interval, paired_difference


def _ratio(numerator: float, denominator: float) -> float | None:
    if denominator == 0 or numerator != numerator or denominator != denominator:
        return None
    return numerator / denominator


def evaluate_models(
    models: dict[str, nn.Module],
    data,
    *,
    reference: str | None = None,
    batch_sizes: Sequence[int] = (1, 64),
    threads: int = 1,
    latency_repeats: int = 50,
    device: str = "cpu",
    batch_size: int = 512,
    predictions: dict[str, Predictions] | None = None,
) -> dict[str, dict[str, Any]]:
    """Quality, size and latency of each model; agreement/KL against ``reference`` if named.

    ``predictions``: the models' outputs on ``data`` when the caller has them already."""
    if predictions is None:
        predictions = {name: predict(m, data, batch_size, device) for name, m in models.items()}
    reference_logits = predictions[reference].logits if reference else None
    for m in models.values():
        m.to("cpu")
    latency = measure_latency(
        models, data, batch_sizes=batch_sizes, threads=threads, repeats=latency_repeats
    )
    out: dict[str, dict[str, Any]] = {}
    for name, model in models.items():
        pred = predictions[name]
        entry: dict[str, Any] = classification_metrics(pred.logits, pred.labels, reference_logits)
        entry["params"] = count_parameters(model)
        entry["size_bytes"] = size_on_disk(model)
        for bs in batch_sizes:
            suffix = "" if bs == 1 else f"_b{bs}"
            entry[f"latency_ms_p50{suffix}"] = latency[name][bs]["p50"]
            entry[f"latency_ms_p95{suffix}"] = latency[name][bs]["p95"]
        entry["latency_threads"] = threads
        out[name] = entry
    return out


def compare(
    teacher: nn.Module,
    student: nn.Module,
    data,
    *,
    baseline: nn.Module | None = None,
    batch_sizes: Sequence[int] = (1, 64),
    threads: int = 1,
    latency_repeats: int = 50,
    device: str = "cpu",
    diagnostics: bool = True,
    stages: dict[str, nn.Module] | None = None,
) -> dict[str, Any]:
    """The ``metrics.json`` core: each model's entry plus retention, speedup and compression.

    retention = student accuracy / teacher accuracy; speedup = teacher / student latency
    (batch 1, p50); compression = teacher / student parameters. With a hard-label ``baseline``
    (the same student trained without the teacher), ``gap_closed`` is the share of the
    teacher–baseline accuracy gap that distillation closed; None when the baseline matched or
    beat the teacher, since there was no gap to close. ``diagnostics``: per-class, confusion,
    calibration and inherited-error numbers (:func:`distill.evaluate.diagnostics.diagnose`).
    ``stages``: more models (a pipeline's intermediate students) measured in the same run,
    listed under ``"stages"``.

    ``warnings``: what makes these numbers untrustworthy, each said in full. When the teacher
    is not clearly above chance on ``data`` (:mod:`distill.evaluate.chance`;
    ``teacher_near_chance``, ``chance_accuracy``), ``retention``, ``baseline_retention`` and
    ``gap_closed`` are still reported but ``retention_note`` says they mean nothing.
    """
    if 1 not in batch_sizes:
        raise ValueError(
            f"batch_sizes {tuple(batch_sizes)} must include 1: speedup and latency_ms_p50 are "
            "defined at batch 1"
        )
    models = {"teacher": teacher, "student": student}
    if baseline is not None:
        models["baseline"] = baseline
    stages = stages or {}
    clash = set(stages) & set(models)
    if clash:
        raise ValueError(f"stage names {sorted(clash)} clash with the compared models")
    models.update(stages)
    predictions = {name: predict(m, data, device=device) for name, m in models.items()}
    entries = evaluate_models(
        models,
        data,
        reference="teacher",
        batch_sizes=batch_sizes,
        threads=threads,
        latency_repeats=latency_repeats,
        device=device,
        predictions=predictions,
    )
    t, s = entries["teacher"], entries["student"]
    result: dict[str, Any] = {k: v for k, v in entries.items() if k not in stages}
    if stages:
        result["stages"] = [{"name": name, **entries[name]} for name in stages]
    labels = predictions["teacher"].labels
    if diagnostics and labels is not None and "accuracy" in t:
        result["diagnostics"] = diagnose(
            {n: p.logits for n, p in predictions.items() if n not in stages}, labels,
            class_names=tuple(getattr(getattr(data, "info", None), "class_names", ()) or ()))
    result["retention"] = _ratio(s.get("accuracy", float("nan")), t.get("accuracy", float("nan")))
    result["speedup"] = _ratio(t["latency_ms_p50"], s["latency_ms_p50"])
    result["compression"] = _ratio(t["params"], s["params"])
    correct = _correct(predictions)
    if correct:
        _add_uncertainty(result, entries, correct)
    if baseline is not None and "accuracy" in t:
        b = entries["baseline"]
        result["baseline_retention"] = _ratio(b["accuracy"], t["accuracy"])
        result["gap_closed"], note = gap_closed(result.get("differences", {}),
                                                t["accuracy"], b["accuracy"], s["accuracy"])
        if note:
            result["gap_closed_note"] = note
    _add_chance(result, predictions["teacher"])
    return result


def _add_chance(result: dict[str, Any], teacher: Predictions) -> None:
    """``chance_accuracy``, ``teacher_near_chance`` and, when near, the warning and the
    retention note: ratios to a teacher at chance level measure nothing."""
    result.setdefault("warnings", [])
    check = check_chance(teacher.logits, teacher.labels)
    result["chance_accuracy"] = None if check is None else check.chance
    result["teacher_near_chance"] = bool(check is not None and check.near_chance)
    if check is None or not check.near_chance:
        return
    result["warnings"].append(near_chance_warning(check))
    result["retention_note"] = (
        f"meaningless: the teacher scores {100 * check.accuracy:.2f}% where always answering "
        f"the most frequent class scores {100 * check.chance:.2f}%, so retention"
        + (", baseline retention and gap closed compare" if "baseline_retention" in result
           else " compares")
        + " the student with a model at chance level")


def _correct(predictions: dict[str, Predictions]) -> dict[str, Any]:
    """Per test sample, whether each model was right (classification with labels only)."""
    out = {}
    for name, pred in predictions.items():
        if pred.labels is None or pred.logits.dim() != 2 or pred.labels.dim() != 1:
            return {}
        out[name] = (pred.logits.argmax(-1) == pred.labels).numpy()
    return out


def _add_uncertainty(result: dict[str, Any], entries: dict[str, dict[str, Any]],
                     correct: dict[str, Any]) -> None:
    """Every accuracy with its 95% interval over the test set, and every comparison the
    report makes (student or baseline against the teacher, student against the baseline) as
    a paired difference with its interval (see :mod:`distill.evaluate.uncertainty`)."""
    for name, right in correct.items():
        entry = entries[name]
        entry["test_samples"] = int(right.size)
        entry["accuracy_ci95"] = list(accuracy_interval(int(right.sum()), int(right.size)))
    pairs = [(n, "teacher") for n in correct if n != "teacher"]
    if "baseline" in correct:
        pairs.append(("student", "baseline"))
    result["differences"] = {f"{a}_vs_{b}": paired_difference(correct[a], correct[b])
                             for a, b in pairs}
    for stage in result.get("stages", []):
        stage.update({k: entries[stage["name"]][k] for k in ("test_samples", "accuracy_ci95")})
    teacher_accuracy = entries["teacher"].get("accuracy")
    student = result["differences"].get("student_vs_teacher")
    if student and teacher_accuracy:
        lo, hi = student["ci95"]
        result["retention_ci95"] = [1 + lo / teacher_accuracy, 1 + hi / teacher_accuracy]


def gap_closed(differences: dict[str, Any], teacher: float, baseline: float,
               student: float) -> tuple[float | None, str | None]:
    """The share of the teacher–baseline gap the student closed, and why not when there is
    none to report: a ratio of two differences means something only when both are beyond
    their noise (paired 95% intervals). Without intervals (no per-sample labels) it is
    reported as before."""
    gap = teacher - baseline
    if gap <= 0:
        return None, "the baseline matched or beat the teacher: no gap to close"
    gain = differences.get("student_vs_baseline")
    teacher_gap = differences.get("baseline_vs_teacher")
    if gain is not None and not gain["measurable"]:
        return None, ("no measurable difference between student and baseline "
                      f"(±{100 * gain['half_width']:.2f} points, 95%)")
    if teacher_gap is not None and not teacher_gap["measurable"]:
        return None, ("no measurable gap between teacher and baseline "
                      f"(±{100 * teacher_gap['half_width']:.2f} points, 95%)")
    return _ratio(student - baseline, gap), None
