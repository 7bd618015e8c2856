"""Saving and loading students as safetensors + a JSON config: no pickle anywhere.

A saved model is a folder::

    model.safetensors   the weights
    config.json         {"format": "distill.model/1", "architecture": ..., "kwargs": {...}, ...}

``architecture`` names a factory registered with :func:`distill.students.register_architecture`
or a ``"package.module:function"`` path to one of the user's own factories.

A model folder is data, never code: loading resolves ``architecture`` through the registry only;
a ``"module:function"`` path read from a file is imported only with ``trust_code=True`` (as
transformers' ``trust_remote_code``), since that would run whatever the file names. The model
is first built on PyTorch's meta device (no memory) and its shapes checked against the
safetensors header, so a small file cannot make loading allocate more than its weights hold.
"""

from __future__ import annotations

import importlib
import json
import typing
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
# distill's own factories that live in optional modules, imported only when a folder names them
OWN_FACTORIES = (HF_FACTORY,)
SPARE_ELEMENTS = 1 << 20  # quantized skeletons: scales, zero points and small fp32 layers


class ArtifactError(ValueError):
    """A saved model folder is missing, incomplete or inconsistent; the message names it."""


class PickleRefusedError(ArtifactError):
    """Weights stored as a pickle, which loads only with ``allow_pickle=True``."""


class UntrustedCodeError(ArtifactError):
    """A model folder names code to import (``"module:function"``), which runs only with
    ``trust_code=True``."""


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

    ``metadata["preprocessing"]``, how inputs were prepared (``LoadedData.preprocessing``), is
    checked here and given back by :func:`read_preprocessing` and as the loaded model's
    ``distill_preprocessing``, so ``distill predict`` and ``distill eval`` repeat it.
    """
    path = Path(path)
    if metadata and metadata.get("preprocessing") is not None:  # refused now, not at predict
        check_preprocessing(metadata["preprocessing"], "metadata['preprocessing']")
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
    try:  # fail before writing anything if it cannot be stored
        json.dumps(config, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ArtifactError(
            f"cannot record how to rebuild {spec['architecture']!r}: its kwargs and the "
            f"metadata must be JSON values (numbers, strings, lists, dicts): {err}") from err
    with atomic.directory(path) as tmp:
        if quantization is not None:
            safetensors.torch.save_file(tensors, str(tmp / WEIGHTS))
        else:
            safetensors.torch.save_model(model, str(tmp / WEIGHTS))
        atomic.write_json(tmp / CONFIG, config)
    return path


def _resolve_factory(name: str, trust_code: bool, source: Path):
    """The factory ``name`` read from ``source`` stands for: registered names, distill's own
    optional factories, and (only with ``trust_code``) any importable ``module:function``."""
    if name in ARCHITECTURES:
        return ARCHITECTURES[name]
    if ":" not in name:
        raise ArtifactError(
            f"{source}: unknown architecture {name!r}; registered: {sorted(ARCHITECTURES)} "
            "(register yours with distill.register_architecture before loading)")
    if name not in OWN_FACTORIES and not trust_code:
        raise UntrustedCodeError(
            f"{source} names the factory {name!r}: loading it would import module "
            f"{name.partition(':')[0]!r} and run {name.partition(':')[2]!r} with arguments from "
            "the file. Model folders are data; if you trust this folder's source, opt in with "
            "distill.load(path, trust_code=True) (a recipe's trust_code = true, the CLI's "
            "--trust-code), or register the factory first: "
            f"distill.register_architecture({name!r})(factory)")
    module_name, _, attr = name.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise ArtifactError(f"cannot import architecture factory {name!r}: {err}") from err


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


def load(path: str | Path, *, device: str = "cpu", allow_pickle: bool = False,
         trust_code: bool = False, sha256: str | None = None) -> nn.Module:
    """Rebuild a saved model and load its weights; returned in eval mode.

    A Hugging Face folder (its config.json names ``architectures``) loads with transformers.
    Nothing is unpickled unless ``allow_pickle=True`` (a whole model saved with
    ``torch.save``, or a Hugging Face folder with ``.bin`` weights only), which warns. No code
    named by the folder runs unless ``trust_code=True`` (a ``"module:function"`` factory, a
    Hugging Face folder's own modeling code). ``sha256`` pins the weights file (a download,
    a model shipped with a project): any other file is refused before it is read.
    """
    path = Path(path)
    if sha256 is not None:
        check_sha256(path, sha256)
    if path.is_file() and path.suffix in PICKLE_SUFFIXES:
        return _load_pickle(path, allow_pickle).to(device).eval()
    if (path / "modules.json").is_file() and (path / "1_Pooling").is_dir():
        from distill.hf.embeddings import SentenceEncoder

        return SentenceEncoder.from_pretrained(path, trust_code=trust_code).to(device).eval()
    from distill.quantize.onnx import OnnxModel, is_onnx_folder

    if is_onnx_folder(path):
        return OnnxModel(path)
    hf_class = _hf_architecture(path)
    if hf_class is not None:
        preprocessing = read_preprocessing(path)  # a bad record fails before weights are read
        return _with_preprocessing(_load_hf(path, hf_class, allow_pickle, trust_code),
                                   preprocessing).to(device).eval()
    config = read_config(path)
    preprocessing = read_preprocessing(path)
    weights = path / WEIGHTS
    if not weights.is_file() or weights.is_symlink():
        raise ArtifactError(f"{path} has no {WEIGHTS} (a regular file)")
    factory = _resolve_factory(config["architecture"], trust_code, path / CONFIG)
    header = _header(weights)
    _check_sizes(factory, config, header, path, trust_code)
    model = _build(factory, config, path)
    if config.get("resized"):
        _resize_from_file(model, weights, header)
    if config.get("quantization"):
        return _with_preprocessing(_load_quantized(model, config, weights),
                                   preprocessing).to(device)
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
    return _with_preprocessing(model, preprocessing).to(device).eval()


# ---------------------------------------------------------------------------------------------
# what a folder records beside its weights: how inputs were prepared, the class names

HF_METADATA = "distill.json"  # beside a save_pretrained folder (distill.hf.save_pretrained)


def _read_json_object(file: Path) -> dict[str, Any]:
    try:
        value = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ArtifactError(f"{file} is not readable JSON: {err}") from err
    if not isinstance(value, dict):
        raise ArtifactError(f"{file} holds a {type(value).__name__}, not a JSON object")
    return value


def _metadata_file(folder: Path) -> tuple[Path, dict[str, Any]] | None:
    """The file holding ``folder``'s metadata and that metadata; None when it has none:
    distill's format (config.json's "metadata"), an ONNX export (its config.json's
    "preprocessing" and "class_names"), a Hugging Face folder saved by distill (distill.json)."""
    from distill.quantize.onnx import FORMAT as ONNX_FORMAT

    if not folder.is_dir():
        return None
    if (folder / HF_METADATA).is_file():
        return folder / HF_METADATA, _read_json_object(folder / HF_METADATA)
    if not (folder / CONFIG).is_file():
        return None
    config = _read_json_object(folder / CONFIG)
    if config.get("format") == ONNX_FORMAT:
        return folder / CONFIG, {k: config[k] for k in ("preprocessing", "class_names")
                                 if k in config}
    if config.get("format") != FORMAT:
        return None
    metadata = config.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ArtifactError(f"{folder / CONFIG}: 'metadata' must be a JSON object")
    return folder / CONFIG, metadata


def read_metadata(folder: str | Path) -> dict[str, Any]:
    """What ``distill.save(..., metadata=...)`` (or an ONNX export) recorded with a model;
    ``{}`` for a folder that records nothing. Read as data: nothing is imported or run."""
    found = _metadata_file(Path(folder))
    return {} if found is None else found[1]


def read_preprocessing(folder: str | Path) -> dict[str, Any] | None:
    """How the model's inputs were prepared (``LoadedData.preprocessing``, e.g. an image's size,
    channels, mean and std), as recorded in its folder; None when nothing is recorded. A
    record that is not one is an :class:`ArtifactError` naming the file."""
    found = _metadata_file(Path(folder))
    if found is None or found[1].get("preprocessing") is None:
        return None
    file, metadata = found
    return check_preprocessing(metadata["preprocessing"], str(file))


def check_preprocessing(value: Any, source: str) -> dict[str, Any]:
    """``value`` if it is a preprocessing record (a JSON object of a known "kind"; an image's
    size, channels, mean and std usable by :func:`distill.data.formats.images.preprocess_image`),
    else an :class:`ArtifactError` naming ``source``."""
    if not isinstance(value, dict):
        raise ArtifactError(f"{source}: preprocessing must be a JSON object, got "
                            f"{type(value).__name__}")
    from distill.data.formats.base import InputKind  # the kinds LoadedData.preprocessing has

    kind, kinds = value.get("kind"), typing.get_args(InputKind)
    if kind not in kinds:
        raise ArtifactError(f"{source}: preprocessing 'kind' is {kind!r}; known: {kinds}")
    problem = {"image": _image_problem, "tabular": _statistics_problem}.get(
        kind, lambda _: None)(value)
    if problem:
        raise ArtifactError(f"{source}: {kind} preprocessing {problem}")
    return value


def _numbers(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value)


def _statistics_problem(value: dict[str, Any], count: int | None = None) -> str | None:
    for key in ("mean", "std"):
        given = value.get(key)
        if given is None and count is None:  # a table kept as it was
            continue
        if not _numbers(given) or not given or (count is not None and len(given) != count):
            wanted = f"{count} number(s), one per channel" if count else "a list of numbers"
            return f"'{key}' must be {wanted}, got {given!r}"
    if value.get("std") is not None and any(s <= 0 for s in value["std"]):
        return f"'std' must be positive, got {value['std']!r}"
    return None


def _image_problem(value: dict[str, Any]) -> str | None:
    size, channels = value.get("size"), value.get("channels")
    if not (_numbers(size) and len(size) == 2 and all(type(d) is int and d > 0 for d in size)):
        return f"'size' must be [height, width] in pixels, got {size!r}"
    if channels not in ("L", "RGB"):
        return f"'channels' must be 'L' or 'RGB', got {channels!r}"
    return _statistics_problem(value, 1 if channels == "L" else 3)


def _with_preprocessing(model: nn.Module, preprocessing: dict[str, Any] | None) -> nn.Module:
    """The loaded model, carrying its folder's preprocessing record (``None``: none kept)."""
    model.distill_preprocessing = preprocessing
    return model


PINNED_FILES = (WEIGHTS, "model.onnx")


def check_sha256(path: Path, expected: str) -> None:
    """Refuse a model whose weights file is not the one pinned by ``expected``."""
    from distill.teachers.store import sha256_of

    target = path if path.is_file() else next(
        (path / name for name in PINNED_FILES if (path / name).is_file()), None)
    if target is None:
        raise ArtifactError(f"{path}: no {' or '.join(PINNED_FILES)} to check against sha256")
    found = sha256_of(target)
    if found != expected.lower():
        raise ArtifactError(f"{target}: sha256 {found} is not the pinned {expected}; the file "
                            "changed since it was pinned (retrained, damaged or replaced)")


def _build(factory, config: dict[str, Any], path: Path) -> nn.Module:
    try:
        return factory(**config["kwargs"])
    except (TypeError, ValueError) as err:
        raise ArtifactError(
            f"{path / CONFIG}: cannot build {config['architecture']!r} from its kwargs: {err}"
        ) from err


Header = dict[str, tuple[torch.Size, str]]


def _header(weights: Path) -> Header:
    """Every tensor's shape and dtype from the safetensors header, without reading the data
    (the library checks that the header's byte ranges tile the file)."""
    from safetensors import safe_open

    try:
        with safe_open(str(weights), framework="pt") as f:
            return {k: (torch.Size(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype())
                    for k in f.keys()}  # noqa: SIM118
    except Exception as err:  # a corrupt or truncated file
        raise ArtifactError(f"{weights}: not a readable safetensors file ({err})") from err


def _check_sizes(factory, config: dict[str, Any], header: Header, path: Path,
                 trust_code: bool) -> None:
    """Build the model on the meta device (no memory) and refuse it before anything is
    allocated when its tensors are not the ones the weights file holds."""
    try:
        with torch.device("meta"):
            skeleton = factory(**config["kwargs"])
            if config.get("resized"):
                from distill.prune.resize import resize_to

                resize_to(skeleton, {k: shape for k, (shape, _) in header.items()})
    except (TypeError, ValueError) as err:
        raise ArtifactError(
            f"{path / CONFIG}: cannot build {config['architecture']!r} from its kwargs: {err}"
        ) from err
    except Exception as err:  # a factory that cannot build without memory
        if trust_code:
            return  # the caller vouches for the folder: build it for real
        raise ArtifactError(
            f"{path}: {config['architecture']!r} cannot be built on the meta device to check its "
            f"size against {WEIGHTS} before allocating it ({type(err).__name__}: {err}); pass "
            "trust_code=True if you trust the folder") from err
    own = {k: v.shape for k, v in skeleton.state_dict().items()}
    if config.get("quantization"):  # integer weights: fewer bytes, as many (or half) elements
        needed = sum(s.numel() for s in own.values())
        stored = sum(shape.numel() for shape, _ in header.values())
        if needed > 2 * stored + SPARE_ELEMENTS:
            raise ArtifactError(
                f"{path / CONFIG}: its kwargs describe a model of {needed:,} elements, but "
                f"{WEIGHTS} holds {stored:,}: refusing to allocate what the file cannot fill")
        return
    different = [k for k in sorted(set(own) | set(header))
                 if k not in own or k not in header or own[k] != header[k][0]]
    if different:
        shown = ", ".join(
            f"{k}: file {tuple(header[k][0]) if k in header else 'missing'}, config "
            f"{tuple(own[k]) if k in own else 'none'}" for k in different[:4])
        raise ArtifactError(
            f"{path / WEIGHTS} does not match the model its {CONFIG} describes "
            f"({len(different)} tensor{'s' if len(different) > 1 else ''} differ: {shown}); "
            "nothing was allocated")


def _resize_from_file(model: nn.Module, weights: Path, header: Header) -> None:
    """Give a rebuilt model the (pruned) layer shapes stored in ``weights``."""
    from distill.prune.resize import resize_to

    try:
        resize_to(model, {k: shape for k, (shape, _) in header.items()})
    except Exception as err:  # a layer type that cannot be resized
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


def _load_hf(path: Path, class_name: str, allow_pickle: bool = False,
             trust_code: bool = False) -> nn.Module:
    from distill.hf.io import check_folder_sizes, own_memory, require_transformers, weights_options

    transformers = require_transformers()
    cls = getattr(transformers, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, transformers.PreTrainedModel)):
        raise ArtifactError(f"{path / CONFIG}: transformers has no model class {class_name!r}")
    check_folder_sizes(path, cls, trust_code)
    return own_memory(cls.from_pretrained(str(path), trust_remote_code=trust_code,
                                          **weights_options(path, allow_pickle)))


def _load_pickle(path: Path, allow_pickle: bool) -> nn.Module:
    if not allow_pickle:
        raise PickleRefusedError(
            f"{path} is a pickle, which can run code when loaded. If you trust its source, "
            "convert it once in Python: distill.save(distill.load(path, allow_pickle=True), "
            "folder) keeps it as safetensors, which recipes and the CLI load (never pickles)")
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
