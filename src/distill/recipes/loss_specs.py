"""The ``[loss]`` table: which loss (a name in ``distill.losses.registry.LOSSES``) and its
settings, plus the intermediate-layer terms of Hugging Face transformers."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, NonNegativeFloat, PositiveFloat, field_validator

from distill.recipes.values import ConfigValue, Count, Identifier, Layer, Name, Section

LayerMap = dict[Name, Layer]


class LayerLossSpec(Section):
    """An intermediate-layer term (Hugging Face models): ``[loss.hidden]`` or
    ``[loss.attention]``. ``layers`` maps student blocks to teacher blocks (``{0 = 1, 1 = 3}``,
    or module names); by default the student's blocks spread over the teacher's."""

    weight: NonNegativeFloat = 1.0
    layers: LayerMap | None = None


class HiddenLossSpec(LayerLossSpec):
    kind: Literal["cosine", "mse"] = "cosine"


class LossSpec(Section):
    kind: str = "kd"
    """A registered loss (``distill.losses.registry.LOSSES``): ``kd``: soft targets (and
    labels); ``token-kd``: per-token soft targets of language models (what ``kd`` means for
    them); ``embedding``: match the teacher's sentence embeddings (``distance``)."""
    options: dict[Identifier, ConfigValue] = {}
    """Settings only the chosen loss takes, as keyword arguments."""
    distance: Literal["cosine", "mse"] = "cosine"
    temperature: PositiveFloat = 2.0
    alpha: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    hidden: HiddenLossSpec | None = None
    attention: LayerLossSpec | None = None
    divergence: str = "forward_kl"
    """Language models: ``forward_kl``, ``reverse_kl`` or ``jsd`` (or their usual names)."""
    beta: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.5
    """``jsd``'s mixing weight."""
    chunk_size: Count | None = 128
    """Language models: positions per chunk of logits (None: all at once)."""

    @field_validator("kind")
    @classmethod
    def _known_loss(cls, value: str) -> str:
        from distill.losses.registry import LOSSES

        return LOSSES.canonical(value)

    @field_validator("divergence")
    @classmethod
    def _known_divergence(cls, value: str) -> str:
        from distill.losses.divergences import divergence_name

        return divergence_name(value)
