"""``[teacher]`` / ``[student]`` tables for models beyond distill's own MLP and CNN.

- ``arch = "hf-vision"``: one of transformers' image classifiers, built offline from a config
  (``family = "resnet" | "mobilenet_v2" | "efficientnet" | "convnext" | "vit" | "swin"``,
  ``size = "tiny" | "small" | "base"``, ``config = {...}`` overrides), optionally with weights
  from a checkpoint file (``weights``; safetensors, a pickle only with ``allow_pickle``).
- ``arch = "module"``: the user's own ``nn.Module``: ``factory = "package.module:function"``
  and ``kwargs = {...}``. Building it imports and runs that code, so the table must also say
  ``trust_code = true``.

Input shape and number of classes come from the data. As a teacher, a table without
``weights`` is trained by the recipe first (and cached), like a CNN teacher.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from torch import nn

from distill.recipes.values import ConfigValue, FilePath, Identifier, Name, NameOrPath, Section

JsonValue = ConfigValue | list[ConfigValue]


class Weights(Section):
    weights: FilePath | None = None
    """A checkpoint of this very architecture (safetensors; .pt/.pth/.bin only with
    ``allow_pickle = true``, which unpickles the file)."""
    allow_pickle: bool = False


class VisionSpec(Weights):
    arch: Literal["hf-vision"]
    family: Name | None = None
    size: Literal["tiny", "small", "base"] = "small"
    config: dict[Identifier, JsonValue] = {}
    """Fields of the family's transformers config over the size preset (``depths = [2, 2]``)."""
    model: NameOrPath | None = None
    """Instead of ``family``: a pretrained image classifier, a ``save_pretrained`` folder
    (beside the recipe) or a hub id; its head is remade for the data's classes when their
    number differs, and as a teacher it is fine-tuned by ``[teacher.train]`` first."""

    @field_validator("family")
    @classmethod
    def _known_family(cls, value: str | None) -> str | None:
        from distill.hf.vision import FAMILIES  # no transformers import: names only

        return None if value is None else FAMILIES.canonical(value)

    @model_validator(mode="after")
    def _family_or_model(self) -> VisionSpec:
        if (self.family is None) == (self.model is None):
            raise ValueError("give family = '<resnet, vit, ...>' (built from a config) or "
                             "model = '<folder or hub id>' (pretrained), one of them")
        if self.model is not None and ("size" in self.model_fields_set or self.config):
            raise ValueError("size and config shape a family built from scratch; a pretrained "
                             "model brings its own")
        return self


class ModuleSpec(Weights):
    arch: Literal["module"]
    factory: Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")]
    """``"package.module:function"`` (or a class) returning an ``nn.Module``."""
    kwargs: dict[Identifier, JsonValue] = {}
    """Keyword arguments of the factory, besides ``input_shape`` and ``num_classes`` when it
    takes them."""
    trust_code: bool = False

    @model_validator(mode="after")
    def _trusted(self) -> ModuleSpec:
        if not self.trust_code:
            raise ValueError(
                f"factory = '{self.factory}' imports and runs that module's code; if you trust "
                "it, add trust_code = true to this table")
        return self


def build_family_model(spec: Any, info: Any) -> nn.Module:
    """The model a vision or module table describes, for data of ``info``'s shape and classes,
    with its checkpoint's weights when it names one."""
    if isinstance(spec, VisionSpec):
        from distill.hf.vision import build_vision_model

        shape = tuple(info.input_shape)
        if spec.model is not None:
            from distill.hf.vision import load_vision_model

            model = load_vision_model(spec.model, info.num_classes,
                                      allow_pickle=spec.allow_pickle)
            if spec.weights is not None:
                from distill.students.checkpoints import load_weights

                load_weights(model, spec.weights, allow_pickle=spec.allow_pickle)
            return model
        if len(shape) != 3:
            raise ValueError(f"[{spec.arch}] family '{spec.family}' takes images (C, H, W); the "
                             f"data's inputs have shape {shape}")
        model = build_vision_model(spec.family, info.num_classes, image_size=shape[1:],
                                   channels=shape[0], size=spec.size, **spec.config)
    else:
        model = _user_model(spec, info)
    if spec.weights is not None:
        from distill.students.checkpoints import load_weights

        load_weights(model, spec.weights, allow_pickle=spec.allow_pickle)
    return model


def _user_model(spec: ModuleSpec, info: Any) -> nn.Module:
    import inspect

    from distill.students.user import build_user_model, resolve_factory

    kwargs = dict(spec.kwargs)
    try:
        parameters = inspect.signature(resolve_factory(spec.factory)).parameters
    except (TypeError, ValueError):
        parameters = {}
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    for name, value in (("input_shape", list(info.input_shape)),
                        ("num_classes", info.num_classes)):
        if (name in parameters or takes_all) and name not in kwargs:
            kwargs[name] = value
    return build_user_model(spec.factory, trust_code=spec.trust_code, **kwargs)
