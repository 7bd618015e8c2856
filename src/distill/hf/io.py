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

TASKS = {
    "sequence-classification": "AutoModelForSequenceClassification",
    "causal-lm": "AutoModelForCausalLM",
    "masked-lm": "AutoModelForMaskedLM",
    "token-classification": "AutoModelForTokenClassification",
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


def load_model(name_or_path: str | Path, task: str = "sequence-classification",
               **kwargs: Any) -> nn.Module:
    """``AutoModelFor<task>.from_pretrained(name_or_path)``, with errors that say what to do.

    ``name_or_path`` is a hub id (needs network access, or a filled local HF cache) or a local
    folder. ``kwargs`` go to ``from_pretrained`` (``num_labels=2``, ``dtype=...``).
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}; got {task!r}")
    transformers = require_transformers()
    auto = getattr(transformers, TASKS[task])
    local = Path(name_or_path)
    if local.exists() and not (local / "config.json").is_file():
        raise FileNotFoundError(f"{local} has no config.json: not a Hugging Face model folder")
    try:
        return auto.from_pretrained(str(name_or_path), **kwargs)
    except OSError as err:
        raise OSError(
            f"could not load {str(name_or_path)!r} as a {task} model: {err}. A hub id needs "
            "network access (or the model in the local Hugging Face cache); a folder must hold "
            "config.json and weights."
        ) from err


def load_tokenizer(name_or_path: str | Path, **kwargs: Any):
    transformers = require_transformers()
    try:
        return transformers.AutoTokenizer.from_pretrained(str(name_or_path), **kwargs)
    except OSError as err:
        raise OSError(f"could not load a tokenizer from {str(name_or_path)!r}: {err}") from err


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
