"""A causal LM's last hidden states with its output head: logits made a chunk at a time.

A vocabulary of 50k tokens makes ``batch × sequence × vocabulary`` logits the largest tensors of
a language-model distillation step, and a loss over two models' log-probabilities holds several
of them. Reading the hidden states (``batch × sequence × width``) and applying the head inside
the loss, one slice of positions at a time, keeps only a slice's logits alive.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

# configuration fields by which a model changes its logits after the head: reading the head
# directly would skip them, so such models are refused rather than silently mis-scored
_POST_HEAD_FIELDS = ("final_logit_softcapping", "logit_scale", "output_multiplier_scale")


@dataclass
class HiddenStates:
    """Last hidden states ``(batch, sequence, width)`` and the head that maps them to logits."""

    hidden: Tensor
    head: nn.Module

    @property
    def shape(self) -> torch.Size:
        """The shape the logits would have: ``(batch, sequence, vocabulary)``."""
        return torch.Size((*self.hidden.shape[:-1], self.vocab_size))

    @property
    def vocab_size(self) -> int:
        weight = getattr(self.head, "weight", None)
        if weight is None:
            raise TypeError(f"cannot tell the vocabulary of a {type(self.head).__name__} head")
        return int(weight.shape[0])

    def logits(self, positions: slice = slice(None)) -> Tensor:
        return self.head(self.hidden[:, positions])

    def is_finite(self) -> bool:
        return bool(torch.isfinite(self.hidden).all())

    def to(self, device: torch.device | str) -> HiddenStates:
        return HiddenStates(self.hidden.to(device), self.head)


def supports_hidden_states(model: nn.Module) -> bool:
    """A Hugging Face causal LM (or anything shaped like one) whose logits are ``head(hidden)``."""
    base = getattr(model, "base_model", None)
    get_head = getattr(model, "get_output_embeddings", None)
    return base is not None and base is not model and callable(get_head) and get_head() is not None


def read_hidden_states(model: nn.Module, inputs: Tensor | Mapping[str, Any]) -> HiddenStates:
    """Run ``model``'s body only; the head is applied later, a chunk of positions at a time."""
    if not supports_hidden_states(model):
        raise TypeError(
            f"{type(model).__name__} does not expose a base model and an output head "
            "(base_model, get_output_embeddings()), so its logits cannot be made in chunks; "
            "use chunk_size=None to read its full logits instead"
        )
    config = getattr(model, "config", None)
    changed = [f for f in _POST_HEAD_FIELDS if getattr(config, f, None) not in (None, 1, 1.0)]
    if changed:
        raise ValueError(
            f"{type(model).__name__} rescales its logits after the head ({', '.join(changed)}); "
            "chunked logits would miss that: use chunk_size=None for this model"
        )
    base = model.base_model
    output = base(**inputs) if isinstance(inputs, Mapping) else base(inputs)
    hidden = getattr(output, "last_hidden_state", None)
    if hidden is None:
        hidden = output[0] if isinstance(output, tuple | list) else output
    return HiddenStates(hidden, model.get_output_embeddings())


def read_outputs(model: nn.Module, inputs: Tensor | Mapping[str, Any]) -> HiddenStates | Tensor:
    """Hidden states when ``model`` exposes them (logits made later, in chunks); else logits."""
    if supports_hidden_states(model):
        return read_hidden_states(model, inputs)
    from distill.batches import forward

    return forward(model, inputs)


def logits_at(value: HiddenStates | Tensor, positions: slice) -> Tensor:
    """The logits of ``positions``: made from hidden states, or sliced from full logits."""
    return value.logits(positions) if isinstance(value, HiddenStates) else value[:, positions]
