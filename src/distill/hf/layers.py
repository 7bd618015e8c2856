"""Where the transformer blocks of a Hugging Face model live, per architecture family.

Every family keeps its blocks in one ``nn.ModuleList`` under the base model (``encoder.layer``
for BERT-style encoders, ``layers`` for llama-style decoders). Knowing that path is all the
layer-dropping student builder and the index-based layer mapping need.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class Family:
    blocks: str  # the ModuleList of blocks, relative to the base model
    attention: str  # the attention module inside one block (outputs (out, weights))


ENCODER = Family(blocks="encoder.layer", attention="attention.self")
DECODER = Family(blocks="layers", attention="self_attn")

FAMILIES: dict[str, Family] = {
    **dict.fromkeys(("bert", "roberta", "xlm-roberta", "electra", "camembert"), ENCODER),
    **dict.fromkeys(
        ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "smollm3", "phi3"), DECODER
    ),
}


def family_of(model: nn.Module) -> Family:
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in FAMILIES:
        what = f"model_type {model_type!r}" if model_type else f"a {type(model).__name__}"
        raise ValueError(
            f"{what} is not supported for layer selection; supported model types: "
            f"{', '.join(sorted(FAMILIES))}. Name the layers yourself (module names from "
            "model.named_modules()) for other models."
        )
    return FAMILIES[model_type]


def base_prefix(model: nn.Module) -> str:
    """The name of the base model inside ``model`` ('' when ``model`` is the base model)."""
    base = getattr(model, "base_model", model)
    for name, module in model.named_modules():
        if module is base:
            return name
    return ""


def blocks_path(model: nn.Module) -> str:
    prefix = base_prefix(model)
    path = family_of(model).blocks
    return f"{prefix}.{path}" if prefix else path


def block_names(model: nn.Module) -> list[str]:
    """Module names of the transformer blocks, in order."""
    path = blocks_path(model)
    blocks = model.get_submodule(path)
    if not isinstance(blocks, nn.ModuleList):
        raise ValueError(f"{path!r} in {type(model).__name__} is not a list of blocks")
    return [f"{path}.{i}" for i in range(len(blocks))]


def layer_name(model: nn.Module, layer: int | str, part: str = "block") -> str:
    """A module name for ``layer``: an index into the blocks, or a name used as given.

    ``part="attention"`` names the block's attention module instead of the block itself.
    """
    if isinstance(layer, str):
        return layer
    names = block_names(model)
    if not -len(names) <= layer < len(names):
        raise IndexError(
            f"layer {layer} is out of range: {type(model).__name__} has {len(names)} blocks"
        )
    name = names[layer]
    return f"{name}.{family_of(model).attention}" if part == "attention" else name


def spread_layers(student_layers: int, teacher_layers: int) -> dict[int, int]:
    """Student block i learns from the last teacher block of its share (DistilBERT: 2i + 1)."""
    if student_layers < 1 or teacher_layers < student_layers:
        raise ValueError(
            f"cannot map {student_layers} student blocks onto {teacher_layers} teacher blocks"
        )
    return {i: (i + 1) * teacher_layers // student_layers - 1 for i in range(student_layers)}
