"""Language models side by side: what :func:`distill.compare` is for classifiers.

Each model's held-out perplexity, its KL to the teacher and top-1 agreement per token, its
parameters, bytes and latency per sequence; then the same top-level keys a classification run
has (``retention``, ``speedup``, ``compression``), with ``retention`` the teacher's perplexity
over the student's (1.0: as good as the teacher; it is the ratio of per-token likelihoods,
exp of minus the gap in cross-entropy), and a few greedy continuations of each model for the
same prompts, so a reader sees what the numbers mean. Generation speed (batch 1, KV cache,
greedy; :mod:`distill.lm.speed`) is measured for prompts of 64 and 256 tokens where the models
have the positions, at the latency's thread count: ``generation_speed`` holds it all, each model's
``decode_tokens_per_s`` and the top-level ``generation_speedup`` are its first setting's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from distill.evaluate.latency import measure_latency
from distill.evaluate.size import count_parameters, size_on_disk
from distill.lm.evaluate import lm_metrics

PROMPT_TOKENS = 16  # a sample generation starts from this many tokens of a held-out sequence


def compare_lm(teacher: nn.Module, student: nn.Module, test: Any, *, tokenizer: Any = None,
               baseline: nn.Module | None = None, batch_sizes: Sequence[int] = (1,),
               threads: int = 1, latency_repeats: int = 20, samples: int = 3,
               max_new_tokens: int = 30, batch_size: int = 8,
               speed_new_tokens: int = 32) -> dict[str, Any]:
    """Teacher, student (and the hard-label baseline) on the held-out ``test`` sequences."""
    models = {"teacher": teacher, "student": student}
    if baseline is not None:
        models["baseline"] = baseline
    result: dict[str, Any] = {"task": "causal-lm"}
    latency = measure_latency(models, test, batch_sizes=batch_sizes, threads=threads,
                              repeats=latency_repeats)
    for name, model in models.items():
        entry: dict[str, Any] = lm_metrics(model, test, batch_size=batch_size,
                                           teacher=None if name == "teacher" else teacher)
        entry.update(params=count_parameters(model), size_bytes=size_on_disk(model),
                     latency_threads=threads)
        for bs in batch_sizes:
            suffix = "" if bs == 1 else f"_b{bs}"
            entry[f"latency_ms_p50{suffix}"] = latency[name][bs]["p50"]
            entry[f"latency_ms_p95{suffix}"] = latency[name][bs]["p95"]
        result[name] = entry
    t, s = result["teacher"], result["student"]
    result["retention"] = t["perplexity"] / s["perplexity"]
    result["speedup"] = t["latency_ms_p50"] / s["latency_ms_p50"]
    result["compression"] = t["params"] / s["params"]
    if baseline is not None:
        result["baseline_retention"] = t["perplexity"] / result["baseline"]["perplexity"]
    if speed_new_tokens:
        _add_generation_speed(result, models, test, threads, speed_new_tokens)
    if tokenizer is not None and samples > 0:
        result["generations"] = sample_generations(models, test, tokenizer, samples,
                                                   max_new_tokens)
    return result


SPEED_PROMPTS = (64, 256)


def _add_generation_speed(result: dict[str, Any], models: dict[str, nn.Module], test: Any,
                          threads: int, new_tokens: int) -> None:
    from distill.lm.speed import generation_speed

    limit = min(getattr(m.config, "max_position_embeddings", 10**9) for m in models.values())
    lengths = tuple(n for n in SPEED_PROMPTS if n + new_tokens <= limit)
    if not lengths:
        return
    ids = test.encodings["input_ids"] if hasattr(test, "encodings") else test.inputs
    speeds = generation_speed(models, ids[:8], prompt_lengths=lengths,
                              threads=(threads,),
                              new_tokens=new_tokens)
    result["generation_speed"] = speeds
    first = next(iter(speeds["teacher"]))
    for name in models:
        result[name]["decode_tokens_per_s"] = speeds[name][first]["decode_tokens_per_s"]
    result["generation_speedup"] = (result["student"]["decode_tokens_per_s"]
                                    / result["teacher"]["decode_tokens_per_s"])


def sample_generations(models: dict[str, nn.Module], test: Any, tokenizer: Any, count: int,
                       max_new_tokens: int) -> list[dict[str, str]]:
    """Greedy continuations of the first ``count`` held-out sequences' openings, per model."""
    from distill.lm.generation import generate

    ids = test.encodings["input_ids"][:count, :PROMPT_TOKENS]
    mask = test.encodings.get("attention_mask")
    prompts = []
    for row, keep in zip(ids, mask[:count, :PROMPT_TOKENS] if mask is not None else ids,
                         strict=True):
        tokens = row[keep.bool()] if mask is not None else row
        prompts.append(tokenizer.decode(tokens, skip_special_tokens=True))
    outputs = {name: generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens)
               for name, model in models.items()}
    return [{"prompt": prompt, **{name: outputs[name][i] for name in models}}
            for i, prompt in enumerate(prompts)]
