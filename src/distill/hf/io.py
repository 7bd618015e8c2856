"""Loading Hugging Face teachers and saving students that load without distill.

A saved student is a plain ``save_pretrained`` folder (config, safetensors weights, tokenizer
files): ``AutoModel*.from_pretrained`` and ``AutoTokenizer.from_pretrained`` open it, with no
``distill`` import. Training-only parts (layer projections) live in the losses, never in it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from distill import atomic
from distill.hf.hub import unreachable_reason

TASKS = {
    "sequence-classification": "AutoModelForSequenceClassification",
    "causal-lm": "AutoModelForCausalLM",
    "masked-lm": "AutoModelForMaskedLM",
    "token-classification": "AutoModelForTokenClassification",
    "image-classification": "AutoModelForImageClassification",
    "base": "AutoModel",
}


def require_transformers():
    try:
        import transformers
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImportError(
            "Hugging Face models need the transformers package: pip install 'distill[hf]'"
        ) from err
    return transformers


def is_hf_model(model: Any) -> bool:
    """A ``transformers`` model (it has a config and ``save_pretrained``)."""
    return hasattr(model, "save_pretrained") and hasattr(getattr(model, "config", None),
                                                          "model_type")


PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")


def weights_options(name_or_path: str | Path, allow_pickle: bool = False,
                    **kwargs: Any) -> dict[str, Any]:
    """``from_pretrained`` options that load safetensors only, unless ``allow_pickle``.

    PyTorch's ``.bin`` checkpoints are pickles, which can run code as they load; a folder that
    holds nothing else is refused with a message saying how to opt in (with a warning).
    """
    if "gguf_file" in kwargs:  # GGUF is a plain tensor format
        return {}
    local = Path(name_or_path)
    if not local.is_dir():  # a hub id: ask for its safetensors files
        return {} if allow_pickle else {"use_safetensors": True}
    if any(local.glob("*.safetensors")):
        return {"use_safetensors": True}
    pickled = [name for name in PICKLE_WEIGHTS if (local / name).is_file()]
    if not pickled:
        return {}
    if not allow_pickle:
        from distill.artifacts import PickleRefusedError

        raise PickleRefusedError(
            f"{local / pickled[0]} is a pickle (PyTorch .bin), which can run code when loaded. "
            "If you trust its source, re-save it once as safetensors in Python (load it with "
            "allow_pickle=True, then model.save_pretrained(folder)); recipes and the CLI load "
            "safetensors only")
    import warnings

    warnings.warn(f"loading pickled weights from {local / pickled[0]} (allow_pickle=True)",
                  UserWarning, stacklevel=3)
    return {"use_safetensors": False}


def load_model(name_or_path: str | Path, task: str = "sequence-classification",
               allow_pickle: bool = False, trust_remote_code: bool = False,
               **kwargs: Any) -> nn.Module:
    """``AutoModelFor<task>.from_pretrained(name_or_path)``, with errors that say what to do.

    ``name_or_path`` is a hub id (needs network access, or a filled local HF cache) or a local
    folder. ``kwargs`` go to ``from_pretrained`` (``num_labels=2``, ``dtype=...``). Only
    safetensors weights load unless ``allow_pickle=True`` (see :func:`weights_options`), and a
    model's own Python code (``auto_map``) runs only with ``trust_remote_code=True``: never
    asked interactively. A local folder's config is checked against its weights first.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}; got {task!r}")
    transformers = require_transformers()
    auto = getattr(transformers, TASKS[task])
    local = Path(name_or_path)
    if local.exists() and not (local / "config.json").is_file():
        raise FileNotFoundError(f"{local} has no config.json: not a Hugging Face model folder")
    if local.is_dir() and "gguf_file" not in kwargs:
        check_folder_sizes(local, auto, trust_remote_code, **kwargs)
    offline = None if local.exists() else unreachable_reason()
    if offline is not None:  # look in the local cache only: no minute of network retries
        kwargs.setdefault("local_files_only", True)
    kwargs = {**weights_options(name_or_path, allow_pickle, **kwargs), **kwargs}
    try:
        loaded = auto.from_pretrained(str(name_or_path), trust_remote_code=trust_remote_code,
                                      **kwargs)
    except OSError as err:
        if offline is not None:
            raise OSError(
                f"could not load {str(name_or_path)!r}: it is no local folder, the Hugging Face "
                f"hub cannot be asked ({offline}) and the model is not in the local Hugging Face "
                "cache. Give a local folder (save_pretrained), or run once where the hub is "
                "reachable.") from None
        raise OSError(
            f"could not load {str(name_or_path)!r} as a {task} model: {err}. A hub id needs "
            "network access (or the model in the local Hugging Face cache); a folder must hold "
            "config.json and weights."
        ) from err
    except ValueError as err:
        if "trust_remote_code" in str(err):
            raise UntrustedHFCodeError(_remote_code_message(name_or_path)) from err
        raise
    own_memory(loaded[0] if isinstance(loaded, tuple) else loaded)  # output_loading_info
    return loaded


def own_memory(model: nn.Module) -> nn.Module:
    """Give every parameter and buffer memory of its own (in place; tied weights stay tied).

    ``from_pretrained`` may leave tensors pointing into the weights file's bytes at unaligned
    offsets, where some CPU kernels (depthwise convolutions) round differently: a reloaded
    model would not give exactly the logits of the one saved."""
    import torch

    seen: set[int] = set()
    with torch.no_grad():
        for tensor in (*model.parameters(), *model.buffers()):
            if id(tensor) not in seen:
                seen.add(id(tensor))
                tensor.data = tensor.data.clone()
    return model


class UntrustedHFCodeError(ValueError):
    """A Hugging Face model or tokenizer that needs its own Python code, not trusted."""


def _remote_code_message(name_or_path: str | Path) -> str:
    return (f"{str(name_or_path)!r} ships its own Python code (config 'auto_map'), which runs "
            "only if you trust its source: pass trust_remote_code=True (distill.load(..., "
            "trust_code=True), the CLI's --trust-code)")


def load_tokenizer(name_or_path: str | Path, trust_remote_code: bool = False, **kwargs: Any):
    transformers = require_transformers()
    offline = None if Path(name_or_path).exists() else unreachable_reason()
    if offline is not None:
        kwargs.setdefault("local_files_only", True)
    try:
        return transformers.AutoTokenizer.from_pretrained(
            str(name_or_path), trust_remote_code=trust_remote_code, **kwargs)
    except OSError as err:
        if offline is not None:
            raise OSError(f"could not load a tokenizer from {str(name_or_path)!r}: it is no "
                          f"local folder, the Hugging Face hub cannot be asked ({offline}) and "
                          "it is not in the local Hugging Face cache") from None
        raise OSError(f"could not load a tokenizer from {str(name_or_path)!r}: {err}") from err
    except ValueError as err:
        if "trust_remote_code" in str(err):
            raise UntrustedHFCodeError(_remote_code_message(name_or_path)) from err
        raise


SPARE_ELEMENTS = 1 << 24  # a new task head, or weights a checkpoint leaves to initialisation


def check_folder_sizes(folder: Path, model_class: Any, trust_remote_code: bool = False,
                       **kwargs: Any) -> None:
    """Refuse a folder whose config.json describes a model far larger than its safetensors
    files hold, before anything is allocated: the model is built on the meta device (no
    memory) and its elements compared with the headers' (tied weights are stored once, a new
    head is allowed). Folders with pickled weights only are checked by ``allow_pickle``."""
    import math

    import torch
    from safetensors import safe_open

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return
    stored = 0
    for file in files:
        try:
            with safe_open(str(file), framework="pt") as f:
                stored += sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())  # noqa: SIM118
        except Exception as err:  # a corrupt or truncated file
            raise ValueError(f"{file}: not a readable safetensors file ({err})") from err
    transformers = require_transformers()
    options = {k: v for k, v in kwargs.items() if k in ("num_labels",)}
    concrete = issubclass(model_class, transformers.PreTrainedModel)
    try:
        if concrete:  # a class named by the folder itself: its own config class
            config = model_class.config_class.from_pretrained(str(folder), **options)
        else:  # AutoModelFor...: the config's model_type picks the class
            config = transformers.AutoConfig.from_pretrained(
                str(folder), trust_remote_code=trust_remote_code, **options)
        with torch.device("meta"):
            skeleton = (model_class(config) if concrete else
                        model_class.from_config(config, trust_remote_code=trust_remote_code))
    except ValueError as err:
        if "trust_remote_code" in str(err):
            raise UntrustedHFCodeError(_remote_code_message(folder)) from err
        raise ValueError(f"{folder / 'config.json'}: cannot build its model: {err}") from err
    except Exception as err:
        raise ValueError(f"{folder / 'config.json'}: cannot build its model: {err}") from err
    needed = sum(p.numel() for p in skeleton.parameters())
    if needed > 2 * stored + SPARE_ELEMENTS:
        raise ValueError(
            f"{folder / 'config.json'} describes a model of {needed:,} parameters, but its "
            f"safetensors files hold {stored:,} values: refusing to allocate what the files "
            "cannot fill")


def save_pretrained(model: nn.Module, path: str | Path, tokenizer: Any = None,
                    metadata: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (and its tokenizer) as a Hugging Face folder, atomically."""
    if not is_hf_model(model):
        raise TypeError(
            f"{type(model).__name__} is not a Hugging Face model; use distill.save for others"
        )
    path = Path(path)
    with atomic.directory(path) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        if metadata:
            atomic.write_json(tmp / "distill.json", metadata)
    return path


def model_from_config(model_class: str, config: dict[str, Any]) -> nn.Module:
    """A freshly initialised ``transformers.<model_class>`` with ``config``: the skeleton a
    quantized Hugging Face student is rebuilt on before its integer weights are loaded."""
    transformers = require_transformers()
    cls = getattr(transformers, model_class, None)
    if cls is None or not hasattr(cls, "config_class"):
        raise ValueError(f"transformers has no model class {model_class!r}")
    return cls(cls.config_class.from_dict(config))


def config_kwargs(model: nn.Module) -> dict[str, Any]:
    """What :func:`model_from_config` needs to rebuild ``model``, as JSON values."""
    import json

    return {"model_class": type(model).__name__,
            "config": json.loads(model.config.to_json_string(use_diff=False))}
