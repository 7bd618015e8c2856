"""``[student]`` tables that derive the student from a Hugging Face teacher: its own blocks
(``hf-layers``), its architecture from scratch (``hf-scratch``), or a cut of it (``hf-pruned``).
Kept apart from :mod:`distill.recipes.schema` so each concept is declared once, in one place."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from distill.recipes.values import ConfigValue, Count, Identifier, NonNegativeCount, Section

__all__ = ["HFLayersStudent", "HFPrunedStudent", "HFScratchStudent"]


class HFLayersStudent(Section):
    """The teacher's own blocks, weights copied (DistilBERT): ``layers`` or every other one."""

    arch: Literal["hf-layers"]
    layers: list[NonNegativeCount] | None = Field(default=None, min_length=1)


class HFScratchStudent(Section):
    """The teacher's architecture with a changed config (e.g. ``hidden_size``), from scratch."""

    arch: Literal["hf-scratch"]
    config: dict[Identifier, ConfigValue] = {}


class HFPrunedStudent(Section):
    """A causal-LM teacher cut to ``size`` (a share of its parameters, or a count), the cut
    chosen on the training text (:mod:`distill.lm.prune`), then recovered by distillation."""

    arch: Literal["hf-pruned"]
    size: Annotated[float, Field(gt=0.0)]
    way: Literal["depth", "width", "depth+width"] = "depth"
    criterion: Literal["cosine", "skip", "every-other"] = "skip"
    blocks: Count | None = None
    """``depth+width``: the blocks kept (the most important by ``criterion``); the MLPs narrow
    to the rest of the budget. The block count sets decode speed at batch 1."""
    head_groups: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0  # width: share of KV groups
    calibration_batches: Count = 4
    init: Literal["pruned", "random"] = "pruned"
    """``random``: the cut's architecture with fresh weights (seeded by ``[train] seed``): what
    starting from the teacher's own weights buys, measured at the same size."""

    @model_validator(mode="after")
    def _heads_are_width(self) -> HFPrunedStudent:
        if self.head_groups and self.way == "depth":
            raise ValueError("head_groups cuts attention heads: it goes with way = 'width' or "
                             "'depth+width'")
        if self.way == "depth+width" and self.blocks is None:
            raise ValueError("way = 'depth+width' needs blocks: how many blocks to keep")
        if self.way != "depth+width" and self.blocks is not None:
            raise ValueError(f"blocks goes with way = 'depth+width' (way is '{self.way}', "
                             "which finds its own shape from size)")
        return self
