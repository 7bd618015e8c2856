"""Text from a causal LM: a quick look at a student, and the teacher's own generations as
training data (sequence-level distillation, Kim & Rush 2016)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from distill.hf.text import TokenizedText
from distill.lm.data import prompt_completions


@contextmanager
def _left_padding(tokenizer: Any):
    """Batched generation continues every prompt from its last token: pad on the left."""
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        yield
    finally:
        tokenizer.padding_side = side


def _length_settings(max_new_tokens: int, min_new_tokens: int | None) -> dict[str, Any]:
    """``generate`` keywords for the completion's length; ``min_new_tokens`` holds the end of
    sequence back until that many tokens are written (a corpus of continuous text, where an
    instruct model's habit of stopping early would leave too little to learn from)."""
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if min_new_tokens is None:
        return {"max_new_tokens": max_new_tokens}
    if not 0 <= min_new_tokens <= max_new_tokens:
        raise ValueError(f"min_new_tokens must be between 0 and max_new_tokens "
                         f"({max_new_tokens}), got {min_new_tokens}")
    return {"max_new_tokens": max_new_tokens, "min_new_tokens": min_new_tokens}


def sampling_settings(temperature: float, top_p: float | None = None) -> dict[str, Any]:
    """``generate`` keywords: greedy at temperature 0, sampling otherwise."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        return {"do_sample": False}
    settings: dict[str, Any] = {"do_sample": True, "temperature": temperature, "top_k": 0}
    if top_p is not None:
        settings["top_p"] = top_p
    return settings


@torch.no_grad()
def generate(
    model: nn.Module,
    tokenizer: Any,
    prompts: str | Sequence[str],
    *,
    max_new_tokens: int = 50,
    min_new_tokens: int | None = None,
    temperature: float = 0.0,
    top_p: float | None = None,
    seed: int = 0,
    batch_size: int = 8,
    progress: bool | None = False,
) -> list[str]:
    """The continuation of each prompt (without the prompt), greedy unless ``temperature > 0``;
    at least ``min_new_tokens`` tokens long when it is given."""
    from tqdm.auto import tqdm

    single = isinstance(prompts, str)
    prompts = [prompts] if single else list(prompts)
    if not prompts:
        raise ValueError("no prompts to continue")
    lengths = _length_settings(max_new_tokens, min_new_tokens)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    torch.manual_seed(seed)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out: list[str] = []
    try:
        starts = range(0, len(prompts), batch_size)
        for start in tqdm(starts, desc="generating", disable=progress is False, unit="batch"):
            chunk = prompts[start : start + batch_size]
            with _left_padding(tokenizer):
                encoded = tokenizer(chunk, return_tensors="pt", padding=True)
            encoded = {k: v.to(device) for k, v in encoded.items()}
            tokens = model.generate(
                **encoded, pad_token_id=tokenizer.pad_token_id, **lengths,
                **sampling_settings(temperature, top_p),
            )
            new = tokens[:, encoded["input_ids"].shape[1] :]
            out += tokenizer.batch_decode(new, skip_special_tokens=True)
    finally:
        model.train(was_training)
    return out


def teacher_generations(
    teacher: nn.Module,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 64,
    min_new_tokens: int | None = None,
    temperature: float = 0.0,
    max_length: int = 128,
    seed: int = 0,
    batch_size: int = 8,
    progress: bool | None = None,
) -> TokenizedText:
    """Prompts completed by the teacher, as prompt/completion training data.

    Sequence-level KD trains the student on these (cross-entropy, or token-level KD on top):
    it learns the teacher's mode rather than the reference text.
    """
    completions = generate(teacher, tokenizer, prompts, max_new_tokens=max_new_tokens,
                           min_new_tokens=min_new_tokens, temperature=temperature, seed=seed,
                           batch_size=batch_size, progress=progress)
    return prompt_completions(prompts, completions, tokenizer, max_length=max_length,
                              name="teacher-generations")


def write_generations(
    teacher: nn.Module,
    tokenizer: Any,
    prompts: Sequence[str],
    path: Any,
    *,
    max_new_tokens: int = 64,
    min_new_tokens: int | None = None,
    temperature: float = 0.0,
    top_p: float | None = None,
    seed: int = 0,
    batch_size: int = 8,
    progress: bool | None = None,
) -> Any:
    """The teacher's completions of ``prompts`` as a JSON Lines corpus, one
    ``{"prompt", "completion", "generation"}`` object per line, ``generation`` holding the
    model and sampling settings that wrote it. A recipe reads it as ``format = "text-corpus"``
    with ``prompt_field = "prompt"`` and ``completion_field = "completion"``. Written whole or
    not at all. ``min_new_tokens = max_new_tokens`` gives every completion the same length, so
    a corpus holds a known number of tokens to learn from."""
    import json
    from pathlib import Path

    from distill import atomic

    completions = generate(teacher, tokenizer, prompts, max_new_tokens=max_new_tokens,
                           min_new_tokens=min_new_tokens, temperature=temperature, top_p=top_p,
                           seed=seed, batch_size=batch_size, progress=progress)
    settings = {"model": str(getattr(teacher.config, "_name_or_path", "") or
                             type(teacher).__name__),
                **_length_settings(max_new_tokens, min_new_tokens), "seed": seed,
                **sampling_settings(temperature, top_p)}
    lines = [json.dumps({"prompt": p, "completion": c, "generation": settings},
                        ensure_ascii=False) for p, c in zip(prompts, completions, strict=True)]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, "\n".join(lines) + "\n")
    return path
