"""What ``distill eval`` measures: classifiers through ``compare``, language models through
``compare_lm``; a model alone is checked against chance."""

from __future__ import annotations

import argparse
from typing import Any


def evaluate_for_cli(args: argparse.Namespace, model, teacher, data) -> dict[str, Any]:
    """compare() against the teacher, or the model alone (warned about when near chance)."""
    from distill.evaluate.chance import check_chance, near_chance_warning
    from distill.evaluate.compare import compare, evaluate_models
    from distill.evaluate.predict import predict
    from distill.tasks import task_of

    if task_of(data) == "causal-lm":  # next tokens: perplexity, not accuracy
        return _evaluate_lm(args, model, teacher, data)
    if teacher is not None:
        return compare(teacher, model, data, threads=args.threads, latency_repeats=args.repeats)
    predictions = {"student": predict(model, data)}
    result = evaluate_models({"student": model}, data, threads=args.threads,
                             latency_repeats=args.repeats, predictions=predictions)
    check = check_chance(predictions["student"].logits, predictions["student"].labels)
    result["warnings"] = [near_chance_warning(
        check, f"the model {args.model}", "its accuracy here says nothing about what it learned"
    )] if check is not None and check.near_chance else []
    return result


def _evaluate_lm(args: argparse.Namespace, model, teacher, data) -> dict[str, Any]:
    """Perplexity (and, against a teacher, KL, agreement and the ratios), size and latency."""
    from distill.evaluate.latency import measure_latency
    from distill.evaluate.size import count_parameters, size_on_disk
    from distill.lm.compare import compare_lm
    from distill.lm.evaluate import lm_metrics

    if teacher is not None:
        return {**compare_lm(teacher, model, data, threads=args.threads,
                             latency_repeats=args.repeats, samples=0), "warnings": []}
    latency = measure_latency({"student": model}, data, batch_sizes=(1,), threads=args.threads,
                              repeats=args.repeats)["student"][1]
    entry = {**lm_metrics(model, data), "params": count_parameters(model),
             "size_bytes": size_on_disk(model), "latency_ms_p50": latency["p50"],
             "latency_ms_p95": latency["p95"], "latency_threads": args.threads}
    return {"task": "causal-lm", "student": entry, "warnings": []}
