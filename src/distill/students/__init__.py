"""Building students (and teachers): small CNNs and MLPs from a spec, transformers' vision
families (``build("hf-vision", family="resnet", ...)``), a user's own ``nn.Module`` factory,
and weights from a checkpoint file.

The vision families, checkpoints and user factories are imported on first use, so
``import distill`` never imports transformers.
"""

from typing import Any

from distill.students.builders import (
    ARCHITECTURES,
    build,
    build_cnn,
    build_mlp,
    register_architecture,
)

ARCHITECTURES.register_lazy("hf-vision", "distill.hf.vision:build_vision_model")

_LAZY = {
    "build_vision_model": "distill.hf.vision",
    "load_vision_model": "distill.hf.vision",
    "load_weights": "distill.students.checkpoints",
    "build_user_model": "distill.students.user",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'distill.students' has no attribute {name!r}")


__all__ = [
    "ARCHITECTURES",
    "build",
    "build_cnn",
    "build_mlp",
    "build_user_model",
    "build_vision_model",
    "load_vision_model",
    "load_weights",
    "register_architecture",
]
