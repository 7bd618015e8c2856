"""Saving and loading students as safetensors + a JSON config: no pickle anywhere.

A saved model is a folder::

    model.safetensors   the weights
    config.json         {"format": "distill.model/1", "architecture": ..., "kwargs": {...}, ...}

``architecture`` names a factory registered with :func:`distill.students.register_architecture`
or a ``"package.module:function"`` path to one of the user's own factories.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from torch import nn

from distill import atomic
from distill.prune.masks import permanent_copy
from distill.students.builders import ARCHITECTURES

FORMAT = "distill.model/1"
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
HF_FACTORY = "distill.hf.io:model_from_config"  # quantized Hugging Face models


class ArtifactError(ValueError):
    """A saved model folder is missing, incomplete or inconsistent; the message names it."""


class PickleRefusedError(ArtifactError):
    """Weights stored as a pickle, which loads only with ``allow_pickle=True``."""


PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".pkl", ".pickle")


def _spec_of(model: nn.Module, architecture: str | None, kwargs: dict | None) -> dict[str, Any]:
    if architecture is not None:
        return {"architecture": architecture, "kwargs": dict(kwargs or {})}
    spec = getattr(model, "distill_spec", None)
    if spec is None:
        raise ArtifactError(
            f"cannot save a {type(model).__name__} without knowing how to rebuild it: pass "
            "architecture='package.module:factory' (and kwargs=...) or build it with "
            "distill.students.build_*"
        )
    out = {"architecture": spec["architecture"], "kwargs": dict(spec["kwargs"])}
    if spec.get("resized"):  # structurally pruned: layer shapes come from the weights file
        out["resized"] = True
    return out


def save(
    model: nn.Module,
    path: str | Path,
    *,
    architecture: str | None = None,
    kwargs: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` to the folder ``path`` atomically (all of it, or nothing).

    Hugging Face models are written as ``save_pretrained`` folders (see
    :func:`distill.hf.save_pretrained`), which ``transformers`` opens without distill;
    quantized ones in distill's format (integer tensors and the HF config), which
    ``distill.load`` opens (or ship them as ONNX: :func:`distill.quantize.to_onnx`).
    """
    path = Path(path)
    model = permanent_copy(model)  # pruning masks become plain zeros in the saved weights
    quantization = getattr(model, "distill_quantization", None)
    if quantization is not None and architecture is None and _is_hf(model):
        # save_pretrained cannot hold int8 layers: distill's format, rebuilt from the HF config
        from distill.hf.io import config_kwargs

        architecture, kwargs = HF_FACTORY, config_kwargs(model)
    if architecture is None and _is_hf(model):
        from distill.hf.io import save_pretrained

        return save_pretrained(model, path, metadata=metadata)
    spec = _spec_of(model, architecture, kwargs)
    config = {
        "format": FORMAT,
        **spec,
        "params": sum(p.numel() for p in model.parameters()),
        "metadata": metadata or {},
    }
    if quantization is not None:
        from distill.quantize.storage import quantized_tensors

        config["quantization"] = quantization
        tensors = quantized_tensors(model)
    json.dumps(config, allow_nan=False)  # fail before writing anything if it cannot be stored
    with atomic.directory(path) as tmp:
        if quantization is not None:
            safetensors.torch.save_file(tensors, str(tmp / WEIGHTS))
        else:
            safetensors.torch.save_model(model, str(tmp / WEIGHTS))
        atomic.write_json(tmp / CONFIG, config)
    return path


def _resolve_factory(name: str):
    if name in ARCHITECTURES:
        return ARCHITECTURES[name]
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            return getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as err:
            raise ArtifactError(f"cannot import architecture factory {name!r}: {err}") from err
    raise ArtifactError(
        f"unknown architecture {name!r}; registered: {sorted(ARCHITECTURES)} "
        "(or use 'package.module:factory')"
    )


def read_config(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    config_path = path / CONFIG
    if not path.is_dir():
        raise ArtifactError(f"{path} is not a saved model folder (expected {CONFIG} + {WEIGHTS})")
    if not config_path.is_file():
        raise ArtifactError(f"{path} has no {CONFIG}: not a saved model, or an incomplete one")
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as err:
        raise ArtifactError(f"{config_path} is not valid JSON: {err}") from err
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        found = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise ArtifactError(f"{config_path}: format {found!r} is not {FORMAT!r}")
    if not isinstance(config.get("architecture"), str):
        raise ArtifactError(f"{config_path}: 'architecture' is missing or not a string")
    kwargs = config.setdefault("kwargs", {})
    if not isinstance(kwargs, dict):
        raise ArtifactError(f"{config_path}: 'kwargs' must be a JSON object")
    return config


def load(path: str | Path, *, device: str = "cpu", allow_pickle: bool = False) -> nn.Module:
    """Rebuild a saved model and load its weights; returned in eval mode.

    A Hugging Face folder (its config.json names ``architectures``) loads with transformers.
    Nothing is unpickled unless ``allow_pickle=True`` (a whole model saved with
    ``torch.save``, or a Hugging Face folder with ``.bin`` weights only), which warns.
    """
    path = Path(path)
    if path.is_file() and path.suffix in PICKLE_SUFFIXES:
        return _load_pickle(path, allow_pickle).to(device).eval()
    if (path / "modules.json").is_file() and (path / "1_Pooling").is_dir():
        from distill.hf.embeddings import SentenceEncoder

        return SentenceEncoder.from_pretrained(path).to(device).eval()
    from distill.quantize.onnx import OnnxModel, is_onnx_folder

    if is_onnx_folder(path):
        return OnnxModel(path)
    hf_class = _hf_architecture(path)
    if hf_class is not None:
        return _load_hf(path, hf_class, allow_pickle).to(device).eval()
    config = read_config(path)
    weights = path / WEIGHTS
    if not weights.is_file():
        raise ArtifactError(f"{path} has no {WEIGHTS}")
    factory = _resolve_factory(config["architecture"])
    try:
        model = factory(**config["kwargs"])
    except (TypeError, ValueError) as err:
        raise ArtifactError(
            f"{path / CONFIG}: cannot build {config['architecture']!r} from its kwargs: {err}"
        ) from err
    if config.get("resized"):
        _resize_from_file(model, weights)
    if config.get("quantization"):
        return _load_quantized(model, config, weights).to(device)
    try:
        missing, unexpected = safetensors.torch.load_model(model, str(weights), strict=False)
    except Exception as err:  # safetensors raises several types for corrupt or mismatched files
        raise ArtifactError(f"cannot load weights from {weights}: {err}") from err
    if missing or unexpected:
        raise ArtifactError(
            f"{weights} does not match architecture {config['architecture']!r}: "
            f"missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}"
        )
    if not hasattr(model, "distill_spec") or config.get("resized"):
        model.distill_spec = {"architecture": config["architecture"], "kwargs": config["kwargs"],
                              **({"resized": True} if config.get("resized") else {})}
    return model.to(device).eval()


def _resize_from_file(model: nn.Module, weights: Path) -> None:
    """Give a rebuilt model the (pruned) layer shapes stored in ``weights``."""
    from safetensors import safe_open

    from distill.prune.resize import resize_to

    try:
        with safe_open(str(weights), framework="pt") as f:
            shapes = {k: torch.Size(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
        resize_to(model, shapes)
    except Exception as err:  # a corrupt header, or a layer type that cannot be resized
        raise ArtifactError(f"cannot restore the pruned shapes stored in {weights}: {err}") from err


def _is_hf(model: nn.Module) -> bool:
    from distill.hf.io import is_hf_model

    return is_hf_model(model)


def _hf_architecture(path: Path) -> str | None:
    try:
        config = json.loads((path / CONFIG).read_text())
    except (OSError, json.JSONDecodeError):
        return None  # read_config reports it
    if isinstance(config, dict) and "format" not in config and config.get("architectures"):
        return str(config["architectures"][0])
    return None


def _load_hf(path: Path, class_name: str, allow_pickle: bool = False) -> nn.Module:
    from distill.hf.io import require_transformers, weights_options

    transformers = require_transformers()
    cls = getattr(transformers, class_name, None)
    if cls is None:
        raise ArtifactError(f"{path / CONFIG}: transformers has no model class {class_name!r}")
    return cls.from_pretrained(str(path), **weights_options(path, allow_pickle))


def _load_pickle(path: Path, allow_pickle: bool) -> nn.Module:
    if not allow_pickle:
        raise PickleRefusedError(
            f"{path} is a pickle, which can run code when loaded; pass allow_pickle=True if you "
            "trust its source, then distill.save(model, folder) keeps it as safetensors")
    import warnings

    warnings.warn(f"unpickling {path} (allow_pickle=True)", UserWarning, stacklevel=3)
    model = torch.load(str(path), map_location="cpu", weights_only=False)
    if not isinstance(model, nn.Module):
        raise ArtifactError(f"{path} holds a {type(model).__name__}, not a model (nn.Module); "
                            "a state dict needs its architecture: build the model, then "
                            "model.load_state_dict(...)")
    return model


def _load_quantized(skeleton: nn.Module, config: dict[str, Any], weights: Path) -> nn.Module:
    """The fp32 architecture given its saved quantized structure and integer weights."""
    from distill.quantize.storage import restore

    try:
        tensors = safetensors.torch.load_file(str(weights))
        model = restore(skeleton, config["quantization"], tensors)
    except (ValueError, KeyError, RuntimeError) as err:
        raise ArtifactError(f"cannot load the quantized model in {weights.parent}: {err}") from err
    model.distill_spec = {"architecture": config["architecture"], "kwargs": config["kwargs"]}
    return model
