"""On-policy distillation (GKD, Agarwal et al. 2024): the student learns on its own text.

A student trained only on given text never sees the mistakes it makes when it writes, and at
generation time those mistakes compound. With on-policy batches, a fraction λ of training
batches is replaced by the student's own continuations of the batch's prompts; the teacher
then scores every position of that text, and the loss pulls the student towards the teacher
exactly where the student went.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from distill.data.base import NO_LABEL
from distill.lm.generation import sampling_settings


@dataclass
class OnPolicy:
    """Replace a fraction of batches by student continuations, scored by a live teacher.

    Args:
        fraction: λ, the share of batches rolled out by the student (0 never, 1 always).
        prompt_length: prompt tokens kept from each row of plain text; rows whose labels begin
            with ``-100`` (prompt/completion data) keep their own prompt instead.
        max_new_tokens: length of each continuation.
        temperature: sampling temperature of the student (0: greedy).
        seed: seeds the choice of batches (sampling follows torch's global seed).
    """

    fraction: float = 0.5
    prompt_length: int = 16
    max_new_tokens: int = 32
    temperature: float = 1.0
    seed: int = 0
    _coin: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.fraction <= 1.0:
            raise ValueError(f"on-policy fraction must be within [0, 1], got {self.fraction}")
        if self.prompt_length < 1 or self.max_new_tokens < 1:
            raise ValueError("prompt_length and max_new_tokens must be >= 1")
        sampling_settings(self.temperature)  # refuses a negative temperature now, not mid-run
        self._coin = random.Random(self.seed)

    def maybe_rollout(
        self, model: nn.Module, inputs: Any, labels: Tensor | None
    ) -> tuple[dict[str, Tensor], Tensor] | None:
        """The student's own batch in place of ``inputs``/``labels``, or None for this batch."""
        if self._coin.random() >= self.fraction:
            return None
        return self.rollout(model, inputs, labels)

    @torch.no_grad()
    def rollout(
        self, model: nn.Module, inputs: Any, labels: Tensor | None
    ) -> tuple[dict[str, Tensor], Tensor]:
        if isinstance(inputs, Tensor):
            inputs = {"input_ids": inputs}
        if not isinstance(inputs, Mapping) or "input_ids" not in inputs:
            raise TypeError("on-policy batches need token ids: a tensor, or a dict with "
                            "'input_ids'")
        ids = inputs["input_ids"]
        mask = inputs.get("attention_mask", torch.ones_like(ids))
        pad, eos = _special_ids(model)
        prompts = [ids[i, : self._prompt_end(i, mask, labels)] for i in range(len(ids))]
        width = max(len(p) for p in prompts)
        prompt = torch.full((len(ids), width), pad, dtype=ids.dtype, device=ids.device)
        prompt_mask = torch.zeros_like(prompt)
        for i, p in enumerate(prompts):  # left-padded: every row continues from its last token
            prompt[i, width - len(p) :] = p
            prompt_mask[i, width - len(p) :] = 1
        was_training = model.training
        model.eval()
        try:
            tokens = model.generate(
                input_ids=prompt, attention_mask=prompt_mask, max_new_tokens=self.max_new_tokens,
                pad_token_id=pad, **sampling_settings(self.temperature),
            )
        finally:
            model.train(was_training)
        new = tokens[:, width:]
        alive = torch.ones_like(new)
        if eos is not None:  # what follows a row's first end-of-sequence is not text
            ended = (new == eos).long().cumsum(1)
            alive = ((ended - (new == eos).long()) == 0).long()
        full = torch.cat([prompt, new], dim=1)
        full_mask = torch.cat([prompt_mask, alive], dim=1)
        targets = torch.full_like(full, NO_LABEL)
        targets[:, width - 1 : -1] = new.masked_fill(alive == 0, NO_LABEL)
        positions = (full_mask.cumsum(1) - 1).clamp(min=0)
        return {"input_ids": full, "attention_mask": full_mask, "position_ids": positions}, targets

    def _prompt_end(self, row: int, mask: Tensor, labels: Tensor | None) -> int:
        length = int(mask[row].sum())
        if labels is not None and labels.dim() == 2 and int(labels[row, 0]) == NO_LABEL:
            learned = (labels[row] != NO_LABEL).nonzero()
            if len(learned):
                return max(1, int(learned[0]) + 1)  # the prompt ends where learning starts
        return max(1, min(self.prompt_length, length))


def _special_ids(model: nn.Module) -> tuple[int, int | None]:
    config = getattr(model, "generation_config", None) or getattr(model, "config", None)
    eos = getattr(config, "eos_token_id", None)
    if isinstance(eos, list | tuple):
        eos = eos[0] if eos else None
    pad = getattr(config, "pad_token_id", None)
    if pad is None:
        pad = eos if eos is not None else 0
    return int(pad), (int(eos) if eos is not None else None)
