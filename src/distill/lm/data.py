"""Text for causal language models, with labels that are the next tokens.

Every dataset here is a :class:`~distill.hf.TokenizedText` whose ``labels`` are already shifted
(``labels[t]`` is the token after position ``t``) and hold ``-100`` where nothing is to be
learned — the prompt, padding, the last position — so the same batches serve cross-entropy,
token-level distillation and evaluation alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from distill.data.base import NO_LABEL, DatasetInfo
from distill.hf.text import TokenizedText


def _token_ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def causal_blocks(
    texts: Sequence[str],
    tokenizer: Any,
    block_length: int,
    *,
    max_blocks: int | None = None,
    spread: bool = False,
    name: str = "text",
) -> TokenizedText:
    """Documents joined by EOS and cut into blocks of ``block_length`` positions.

    A block of ``block_length + 1`` tokens gives ``block_length`` inputs and their next tokens;
    no position is padding. ``max_blocks`` keeps the first blocks only (a token budget), or
    with ``spread`` that many blocks evenly spaced over the whole text (a held-out sample that
    covers every document, not just the first ones).
    """
    if block_length < 1:
        raise ValueError(f"block_length must be >= 1, got {block_length}")
    eos = getattr(tokenizer, "eos_token_id", None)
    ids: list[int] = []
    for text in texts:
        ids += _token_ids(tokenizer, text)
        if eos is not None:
            ids.append(int(eos))
    total = (len(ids) - 1) // block_length
    count = total if max_blocks is None else min(total, max_blocks)
    if count < 1:
        raise ValueError(
            f"{name}: {len(ids)} tokens make no block of {block_length} positions; give more text "
            "or a shorter block_length"
        )
    flat = torch.tensor(ids[: total * block_length + 1], dtype=torch.long)
    inputs = flat[:-1].reshape(total, block_length)
    labels = flat[1:].reshape(total, block_length)
    keep = (torch.linspace(0, total - 1, count).round().long() if spread
            else torch.arange(count))
    inputs = inputs[keep].clone()  # not views of one storage:
    labels = labels[keep].clone()  # masking labels must not edit inputs
    encodings = {"input_ids": inputs, "attention_mask": torch.ones_like(inputs)}
    info = DatasetInfo(name, (block_length,), _vocab_size(tokenizer), task="causal-lm")
    return TokenizedText(encodings, labels, info)


def prompt_completions(
    prompts: Sequence[str],
    completions: Sequence[str],
    tokenizer: Any,
    *,
    max_length: int = 128,
    add_eos: bool = True,
    name: str = "prompt-completions",
) -> TokenizedText:
    """Prompt + completion pairs, right-padded; only the completion's tokens are learned.

    For sequence-level distillation (completions written by the teacher) and instruction data.
    """
    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
    if not prompts:
        raise ValueError(f"{name}: no prompts")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    eos = getattr(tokenizer, "eos_token_id", None)
    rows, label_rows = [], []
    for prompt, completion in zip(prompts, completions, strict=True):
        head = _token_ids(tokenizer, prompt)
        tail = _token_ids(tokenizer, completion) + ([int(eos)] if add_eos and eos is not None
                                                   else [])
        tokens = (head + tail)[: max_length + 1]
        targets = [NO_LABEL] * (len(head) - 1) + tail if head else tail[1:]
        rows.append(tokens[:-1])
        label_rows.append(targets[: len(tokens) - 1])
    width = max(len(r) for r in rows)
    if width == 0:
        raise ValueError(f"{name}: every prompt + completion is a single token or less")
    ids = torch.full((len(rows), width), int(pad), dtype=torch.long)
    labels = torch.full((len(rows), width), NO_LABEL, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (row, target) in enumerate(zip(rows, label_rows, strict=True)):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        labels[i, : len(target)] = torch.tensor(target, dtype=torch.long)
        mask[i, : len(row)] = 1
    info = DatasetInfo(name, (width,), _vocab_size(tokenizer), task="causal-lm")
    return TokenizedText({"input_ids": ids, "attention_mask": mask}, labels, info)


def _vocab_size(tokenizer: Any) -> int:
    try:
        return len(tokenizer)
    except TypeError:
        return int(getattr(tokenizer, "vocab_size", 0))
