"""How fast a causal LM answers: generation at batch 1 with its KV cache, greedy, as a chat
or completion service runs it, measured for several models side by side.

Two numbers per model, prompt length and thread count: the prompt's prefill time (one forward
pass over the prompt, what the first token waits for) and decode speed in tokens/s (the new
tokens over the time generation spent after the prefill). Every call generates exactly
``new_tokens`` tokens (the end-of-text token cannot stop it early), models take turns in
rounds so a slower phase of a shared machine affects all alike, and the medians are reported.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from distill.runtime import thread_count


def _prompt(ids: torch.Tensor, length: int) -> torch.Tensor:
    """The first ``length`` tokens of ``ids`` (repeated if shorter), as a batch of one."""
    flat = ids.reshape(-1)
    if len(flat) == 0:
        raise ValueError("no prompt tokens to measure generation with")
    reps = -(-length // len(flat))
    return flat.repeat(reps)[:length].unsqueeze(0)


@torch.inference_mode()
def _one(model: nn.Module, prompt: torch.Tensor, new_tokens: int) -> tuple[float, float]:
    """(prefill seconds, generate seconds) of one call."""
    mask = torch.ones_like(prompt)
    start = time.perf_counter()
    model(input_ids=prompt, attention_mask=mask, use_cache=True)
    prefill = time.perf_counter() - start
    start = time.perf_counter()
    out = model.generate(input_ids=prompt, attention_mask=mask, max_new_tokens=new_tokens,
                         min_new_tokens=new_tokens, do_sample=False, use_cache=True,
                         pad_token_id=getattr(model.config, "eos_token_id", None) or 0)
    total = time.perf_counter() - start
    if out.shape[1] - prompt.shape[1] != new_tokens:
        raise RuntimeError(f"generated {out.shape[1] - prompt.shape[1]} tokens, not "
                           f"{new_tokens}")
    return prefill, total


def generation_speed(models: Mapping[str, nn.Module], prompt_ids: torch.Tensor, *,
                     prompt_lengths: Sequence[int] = (64, 256),
                     threads: Sequence[int] = (1, 2), new_tokens: int = 32,
                     repeats: int = 3) -> dict[str, dict[str, dict[str, float]]]:
    """``{model: {"p<length>_t<threads>": {"prefill_ms", "decode_tokens_per_s",
    "runs"}}}``, medians of ``repeats`` calls after one untimed call each."""
    if new_tokens < 2 or repeats < 1:
        raise ValueError(f"new_tokens must be >= 2 and repeats >= 1, got {new_tokens}, "
                         f"{repeats}")
    for name, model in models.items():
        limit = getattr(model.config, "max_position_embeddings", None)
        if limit is not None and max(prompt_lengths) + new_tokens > limit:
            raise ValueError(f"{name}: a prompt of {max(prompt_lengths)} tokens and "
                             f"{new_tokens} new ones exceed its {limit} positions")
    modes = {name: m.training for name, m in models.items()}
    samples: dict[str, dict[str, list[tuple[float, float]]]] = {n: {} for n in models}
    try:
        for model in models.values():
            model.eval()
        for count in threads:
            with thread_count(count):
                for length in prompt_lengths:
                    prompt, key = _prompt(prompt_ids, length), f"p{length}_t{count}"
                    for model in models.values():
                        _one(model, prompt, new_tokens)  # untimed: caches and allocator warm
                    for _ in range(repeats):
                        for name, model in models.items():
                            samples[name].setdefault(key, []).append(
                                _one(model, prompt, new_tokens))
    finally:
        for name, m in models.items():
            m.train(modes[name])
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, per_key in samples.items():
        out[name] = {}
        for key, runs in per_key.items():
            prefill = float(np.median([p for p, _ in runs]))
            decode = float(np.median([new_tokens / max(t - p, 1e-9) for p, t in runs]))
            out[name][key] = {"prefill_ms": 1e3 * prefill, "decode_tokens_per_s": decode,
                              "runs": len(runs)}
    return out


def speed_table(speeds: dict[str, dict[str, dict[str, float]]], reference: str = "teacher",
                ) -> list[dict[str, Any]]:
    """Rows per setting: each model's decode tokens/s and its ratio to ``reference``'s."""
    rows = []
    for key in next(iter(speeds.values())):
        base = speeds.get(reference, {}).get(key, {}).get("decode_tokens_per_s")
        for name, per_key in speeds.items():
            entry = per_key[key]
            rows.append({"setting": key, "model": name, **entry,
                         "speedup": entry["decode_tokens_per_s"] / base if base else None})
    return rows
