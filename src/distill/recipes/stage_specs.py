"""The ``[[stages]]`` tables of a recipe: what each pipeline step after distillation takes."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Discriminator, Field, PositiveFloat, Tag, model_validator

from distill.recipes.values import Count, Section


class PruneStage(Section):
    """Prune the current student (structured: a smaller dense model; masks: zeros).

    ``target = "heads"``: a Hugging Face transformer's attention heads instead of its MLP
    neurons (structured only)."""

    kind: Literal["prune"]
    method: Literal["structured", "magnitude", "2:4"] = "structured"
    ratio: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.5
    importance: Literal["magnitude", "activation", "taylor"] = "magnitude"
    target: Literal["neurons", "heads"] = "neurons"

    @model_validator(mode="after")
    def _heads_are_structured(self) -> PruneStage:
        if self.target == "heads" and self.method != "structured":
            raise ValueError("target = 'heads' removes whole heads: it goes with method = "
                             "'structured'")
        return self


class DistillStage(Section):
    """Distil the current student from the recipe's teacher again (e.g. to recover after
    pruning), with the [train] settings unless overridden here; output loss only."""

    kind: Literal["distill"]
    epochs: Count | None = None
    lr: PositiveFloat | None = None


class QuantizeStage(Section):
    """Quantize the current student: ``dynamic``/``static`` int8 after training, ``qat``
    (fake-quantized, distilled from the teacher for ``epochs``, then int8), weight-only
    ``int8-weights``/``int4-weights``, or a ``float16``/``bfloat16`` cast."""

    kind: Literal["quantize"]
    method: Literal["dynamic", "static", "qat", "int8-weights", "int4-weights", "float16",
                    "bfloat16"]
    epochs: Count = 1
    lr: PositiveFloat | None = None
    calibration_batches: Count = 16
    group_size: Count = 32


class ExportStage(Section):
    """Export the current student to ONNX (checked against PyTorch), optionally int8 in ONNX
    Runtime; the run's final student is then the ONNX folder."""

    kind: Literal["export"]
    format: Literal["onnx"] = "onnx"
    int8: Literal["none", "dynamic", "static"] = "none"
    calibration_batches: Count = 16
    trim_vocabulary: bool = False
    """Text students: keep only the embedding rows the training text uses; the graph maps
    the original token ids onto them, so the tokenizer stays the same (ids never seen in
    training share one row)."""


StageSpec = Annotated[
    Union[  # noqa: UP007
        Annotated[PruneStage, Tag("prune")], Annotated[DistillStage, Tag("distill")],
        Annotated[QuantizeStage, Tag("quantize")], Annotated[ExportStage, Tag("export")],
    ],
    Discriminator(lambda v: v.get("kind") if isinstance(v, dict) else getattr(v, "kind", None)),
]
