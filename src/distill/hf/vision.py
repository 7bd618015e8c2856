"""transformers' own image classifiers (ResNet, MobileNetV2, EfficientNet, ConvNeXt, ViT, Swin),
built offline from a config as teachers or students.

No package ships pretrained vision weights here and timm/torchvision are not usable, so these
families are built from ``transformers`` configs alone: ``tiny`` presets for tests and toy data,
``small`` ones (well-known small members: ResNet-18, ConvNeXt-femto, ViT-S, EfficientNet-B0) and
``base`` (the library's defaults). The models take ``pixel_values`` (N, C, H, W) as their first
argument and return ``.logits``, so the engine feeds them like any classifier, and
:func:`distill.save` writes them as ``save_pretrained`` folders that ``distill.load`` and
``AutoModelForImageClassification.from_pretrained`` both open.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from distill.hf.io import load_model, require_transformers
from distill.registry import Registry, UnknownNameError

SIZES = ("tiny", "small", "base")


@dataclass(frozen=True)
class VisionFamily:
    """One transformers model type and its size presets (config fields over the defaults)."""

    model_type: str
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    has_image_size: bool = True  # ResNet's config has no image_size field
    patched: bool = False  # ViT/Swin cut the image into patch_size tiles: sizes must divide


FAMILIES: Registry[VisionFamily] = Registry("vision family")

FAMILIES.register("resnet", VisionFamily("resnet", {
    "tiny": dict(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic"),
    "small": dict(embedding_size=64, hidden_sizes=[64, 128, 256, 512], depths=[2, 2, 2, 2],
                  layer_type="basic"),  # ResNet-18
}, has_image_size=False))
FAMILIES.register("mobilenet_v2", VisionFamily("mobilenet_v2", {
    # finegrained_output=False scales the last 1280-wide layer with the multiplier too
    "tiny": dict(depth_multiplier=0.1, min_depth=4, depth_divisible_by=4,
                 finegrained_output=False, classifier_dropout_prob=0.0),
    "small": dict(depth_multiplier=0.5),
}), aliases=("mobilenetv2",))
FAMILIES.register("efficientnet", VisionFamily("efficientnet", {
    # three of the seven stages (two stride-2 ones): tiny images stay at least 2x2
    "tiny": dict(width_coefficient=0.25, depth_coefficient=0.5, depth_divisor=4,
                 kernel_sizes=[3, 3, 3], in_channels=[32, 16, 24], out_channels=[16, 24, 40],
                 strides=[1, 2, 2], num_block_repeats=[1, 1, 1], expand_ratios=[1, 6, 6],
                 dropout_rate=0.0, drop_connect_rate=0.0),
    "small": dict(width_coefficient=1.0, depth_coefficient=1.0, dropout_rate=0.2),  # B0
}))
FAMILIES.register("convnext", VisionFamily("convnext", {
    "tiny": dict(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2),
    "small": dict(hidden_sizes=[48, 96, 192, 384], depths=[2, 2, 6, 2]),  # ConvNeXt-femto
}))
FAMILIES.register("vit", VisionFamily("vit", {
    "tiny": dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=32, patch_size=4),
    "small": dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6,
                  intermediate_size=1536),  # ViT-S/16
}, patched=True))
FAMILIES.register("swin", VisionFamily("swin", {
    "tiny": dict(embed_dim=8, depths=[1, 1], num_heads=[1, 2], window_size=2, patch_size=2,
                 drop_path_rate=0.0),
    "small": dict(embed_dim=48, depths=[2, 2, 2, 2], num_heads=[3, 6, 12, 24]),
}, patched=True))

# config fields that build_vision_model's own arguments set: refused as overrides
_SET_BY_ARGUMENTS = {"num_channels": "channels=", "image_size": "image_size=",
                     "num_labels": "num_classes=", "id2label": "num_classes=",
                     "label2id": "num_classes="}


def build_vision_model(family: str, num_classes: int, *, image_size: int | tuple[int, int],
                       channels: int, size: str = "tiny", **config_overrides: Any) -> nn.Module:
    """A freshly initialised ``<Family>ForImageClassification`` for ``channels`` x ``image_size``
    images and ``num_classes`` classes.

    ``size`` picks a preset (``tiny``: under 100k parameters, for tests; ``small``; ``base``:
    transformers' defaults); ``config_overrides`` set any field of the family's config on top
    (``depths=[2, 2]``, ``patch_size=8``). The configuration is tried on the meta device first,
    so images too small for its stages are refused here, not at the first batch.
    """
    config = vision_config(family, num_classes, image_size=image_size, channels=channels,
                           size=size, **config_overrides)
    transformers = require_transformers()
    described = f"a {size} {family}" + (f" with {config_overrides}" if config_overrides else "")
    _check_image_fits(described, config, channels, _pair(image_size))
    return transformers.AutoModelForImageClassification.from_config(config)


def vision_config(family: str, num_classes: int, *, image_size: int | tuple[int, int],
                  channels: int, size: str = "tiny", **config_overrides: Any):
    """The transformers config :func:`build_vision_model` builds from (checked, not built)."""
    entry = FAMILIES.get(family)
    if size not in SIZES:
        raise UnknownNameError("vision model size", size, list(SIZES))
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if not isinstance(channels, int) or isinstance(channels, bool) or channels < 1:
        raise ValueError(f"channels must be a positive integer, got {channels!r}")
    height, width = _pair(image_size)
    transformers = require_transformers()
    defaults = transformers.AutoConfig.for_model(entry.model_type).to_dict()
    _check_overrides(family, defaults, config_overrides)
    fields: dict[str, Any] = {**entry.presets.get(size, {}), **config_overrides,
                              "num_channels": channels, "num_labels": num_classes}
    if entry.has_image_size:
        fields["image_size"] = height if height == width else [height, width]
    try:
        config = transformers.AutoConfig.for_model(entry.model_type, **fields)
    except (TypeError, ValueError) as err:
        raise ValueError(f"cannot configure a {size} {family} with {config_overrides}: {err}") \
            from err
    if entry.model_type == "efficientnet" and "hidden_dim" not in config_overrides:
        # the last conv's width is round_filters(1280); hidden_dim must equal it
        from transformers.models.efficientnet.modeling_efficientnet import round_filters

        config.hidden_dim = round_filters(config, 1280)
    if entry.patched:
        _check_patches(family, config.patch_size, (height, width))
    return config


def _pair(value: int | tuple[int, int] | list[int], name: str = "image_size") -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        pair: tuple[Any, ...] = (value, value)
    elif isinstance(value, tuple | list) and len(value) == 2:
        pair = tuple(value)
    else:
        raise ValueError(f"{name} must be an int or (height, width), got {value!r}")
    if not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in pair):
        raise ValueError(f"{name} must hold positive integers, got {value!r}")
    return int(pair[0]), int(pair[1])


def _check_overrides(family: str, defaults: dict[str, Any], overrides: dict[str, Any]) -> None:
    from transformers import PretrainedConfig

    generic = set(PretrainedConfig().to_dict())
    own = sorted(k for k in defaults if k not in generic and k not in _SET_BY_ARGUMENTS
                 and not k.startswith("_"))
    for key in overrides:
        if key in _SET_BY_ARGUMENTS:
            raise ValueError(f"{family}: set {key} with build_vision_model's "
                             f"{_SET_BY_ARGUMENTS[key]} argument, not as a config override")
        if key not in defaults:
            raise UnknownNameError(f"{family} config field", key, own)


def _check_patches(family: str, patch_size: Any, image: tuple[int, int]) -> None:
    patch = _pair(patch_size, "patch_size")
    if image[0] % patch[0] or image[1] % patch[1]:
        raise ValueError(
            f"{family}: image_size {image[0]}x{image[1]} is not divisible by its patch_size "
            f"{patch[0]}x{patch[1]}; pass a patch_size that divides it (patch_size=...) or "
            "resize the images")


def _check_image_fits(described: str, config: Any, channels: int,
                      image: tuple[int, int]) -> None:
    """Run a meta-device forward pass (no memory, no compute): a stage whose kernel is larger
    than what is left of the image fails here with a message, not deep inside torch later."""
    transformers = require_transformers()
    with torch.device("meta"):
        try:
            skeleton = transformers.AutoModelForImageClassification.from_config(config).eval()
        except Exception as err:  # inconsistent fields (lists of different lengths, ...)
            raise ValueError(f"cannot build {described} ({type(err).__name__}: {err})") from err
        try:
            skeleton(torch.zeros(2, channels, *image))
        except Exception as err:  # torch and transformers raise several types for shape errors
            raise ValueError(
                f"{described} cannot take {channels}x{image[0]}x{image[1]} images "
                f"({type(err).__name__}: {err}); larger images, or fewer or smaller "
                "downsampling stages (a smaller size preset), fit") from err


def load_vision_model(name_or_path: str | Path, num_classes: int | None = None, *,
                      trust_remote_code: bool = False, allow_pickle: bool = False) -> nn.Module:
    """An image classifier from a ``save_pretrained`` folder or a hub id.

    The folder's config is checked against its weights before anything is allocated, only
    safetensors load unless ``allow_pickle=True``, and a model's own Python code runs only with
    ``trust_remote_code=True`` (see :func:`distill.hf.load_model`). ``num_classes`` different
    from the saved head's gives a new, freshly initialised classifier; every other tensor must
    fit. A hub id needs network access or the local Hugging Face cache.
    """
    options: dict[str, Any] = {"ignore_mismatched_sizes": True, "output_loading_info": True}
    if num_classes is not None:
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        labels = {i: f"LABEL_{i}" for i in range(num_classes)}  # as num_labels would name them
        options.update(id2label=labels, label2id={v: k for k, v in labels.items()})
    model, info = load_model(name_or_path, "image-classification", allow_pickle=allow_pickle,
                             trust_remote_code=trust_remote_code, **options)
    new_head = _head_names(model) if num_classes is not None else ()  # may differ in size
    misfits = sorted((item for item in info.get("mismatched_keys", ())
                      if not (new_head and str(item[0]).startswith(new_head))),
                     key=lambda item: str(item[0]))
    if misfits:
        key, stored, built = misfits[0][:3]
        raise ValueError(
            f"{str(name_or_path)!r}: {len(misfits)} tensor(s) in its weights do not fit the model "
            f"its config.json describes (first: {key!r}, weights {tuple(stored)}, config "
            f"{tuple(built)}); the folder is inconsistent")
    return model


def _head_names(model: nn.Module) -> tuple[str, ...]:
    """Names of the classification head's modules (every family here calls it classifier)."""
    return tuple(name for name, _ in model.named_children() if "classifier" in name) or (
        "classifier",)
