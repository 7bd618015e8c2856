"""New inputs through a saved model, prepared the way its training data was.

A model folder records how its inputs were prepared (``metadata["preprocessing"]``, read by
:func:`distill.artifacts.read_preprocessing`). ``distill predict`` applies it to image files,
``distill eval --data FOLDER`` to an image folder; and wherever data was prepared otherwise
than the record says, a warning names both, since a model fed other pixels than it was trained
on scores near chance and says nothing.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from distill.artifacts import check_preprocessing

IMAGE_KEYS = ("size", "channels", "mean", "std")  # what preprocess_image needs
IMAGE_FLAGS = "--size H W, --channels L|RGB, --mean M [M M] and --std S [S S]"


@dataclass(frozen=True)
class ImagePrediction:
    """One image's top class: its index, its name (the index when no names are recorded)."""

    path: Path
    index: int
    name: str
    probability: float


def recorded_image_options(recorded: dict[str, Any] | None,
                           given: Collection[str] = ()) -> dict[str, Any]:
    """The image-folder options (size, channels, mean, std) a model's record asks for, except
    those the user gave (``given``: the option names set by hand, which win)."""
    if not recorded or recorded.get("kind") != "image":
        return {}
    return {key: recorded[key] for key in IMAGE_KEYS if key not in given and key in recorded}


def image_preprocessing(recorded: dict[str, Any] | None, given: dict[str, Any],
                        model: str) -> dict[str, Any]:
    """What to apply to image files: the record, with the user's values (``given``, unset
    ones None) in place of its own; a ValueError saying what to pass when neither says all."""
    if recorded is not None and recorded.get("kind") != "image":
        raise ValueError(f"{model} records {recorded.get('kind')} inputs, not images: "
                         "predict reads image files")
    merged = {"kind": "image", **(recorded or {}),
              **{k: v for k, v in given.items() if v is not None}}
    missing = [f"--{k}" for k in IMAGE_KEYS if merged.get(k) is None]
    if missing:
        raise ValueError(
            f"{model} records no preprocessing (how its training images were prepared), so "
            f"pass it: {IMAGE_FLAGS} (missing {', '.join(missing)}); e.g. --size 28 28 "
            "--channels L --mean 0.5 --std 0.5 for grey 28x28 images scaled to [-1, 1]")
    merged["size"] = [int(d) for d in merged["size"]]
    count = 1 if merged["channels"] == "L" else 3
    for key in ("mean", "std"):
        values = [float(v) for v in merged[key]]
        merged[key] = values * count if len(values) == 1 else values
    return check_preprocessing(merged, "the command line")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
    return a == b


def _show(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _compared(recorded: dict[str, Any], used: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The settings that differ, recorded value first; tables: their columns and whether they
    were standardised (their statistics come from whichever data was loaded)."""
    if recorded["kind"] == "image":
        pairs = {k: (recorded.get(k), used.get(k)) for k in IMAGE_KEYS}
        for key in ("mean", "std"):  # one value for every channel reads the same as three
            r, u = pairs[key]
            if isinstance(r, list) and isinstance(u, list) and len(r) != len(u) and (
                    len(r) == 1 or len(u) == 1):
                pairs[key] = (r * len(u), u) if len(r) == 1 else (r, u * len(r))
    elif recorded["kind"] == "tabular":
        pairs = {"feature_columns": (recorded.get("feature_columns"),
                                     used.get("feature_columns")),
                 "standardised": (recorded.get("mean") is not None, used.get("mean") is not None)}
    else:  # text: the tokenizer is the model's own; its length is a choice, not a mismatch
        pairs = {}
    return {k: (r, u) for k, (r, u) in pairs.items() if r is not None and not _same(r, u)}


def preprocessing_mismatches(recorded: dict[str, Any] | None, used: dict[str, Any] | None,
                             who: str, given: Collection[str] = ()) -> list[str]:
    """Warnings where data was prepared otherwise than ``who``'s record says (nothing when
    either side is unknown). ``given``: option names the user set, said as theirs."""
    if not recorded or not used:
        return []
    if recorded.get("kind") != used.get("kind"):
        return [f"{who} was trained on {recorded.get('kind')} inputs, but the data gives "
                f"{used.get('kind')} inputs: its predictions on it may mean nothing"]
    differ = _compared(recorded, used)
    if not differ:
        return []
    record = ", ".join(f"{k} {_show(r)}" for k, (r, _) in differ.items())
    found = ", ".join(f"{k} {_show(u)}" + (" (your --option)" if k in given else "")
                      for k, (_, u) in differ.items())
    advice = ("drop the --option to use the recorded values" if set(differ) & set(given)
              else "prepare the data as recorded, or check that this is the right model")
    return [f"{who} records that its inputs were prepared with {record}, but this data is "
            f"prepared with {found}: a model fed other inputs than it was trained on can score "
            f"near chance, so {advice}"]


def class_names_of(metadata: dict[str, Any]) -> list[str] | None:
    """The recorded ``class_names`` when they are a list of strings; else None."""
    names = metadata.get("class_names")
    if isinstance(names, list) and all(isinstance(n, str) for n in names):
        return names
    return None


@torch.no_grad()
def predict_images(model: nn.Module, paths: Sequence[str | Path],
                   preprocessing: dict[str, Any], class_names: Sequence[str] | None = None,
                   batch_size: int = 64) -> list[ImagePrediction]:
    """Each image file's top class and its probability, after ``preprocessing`` (the steps of
    :func:`distill.data.formats.images.preprocess_image`, which training data went through)."""
    from PIL import Image

    from distill.batches import forward
    from distill.data.formats.images import preprocess_image

    model.eval()
    out: list[ImagePrediction] = []
    for start in range(0, len(paths), batch_size):
        chunk = [Path(p) for p in paths[start:start + batch_size]]
        pixels = []
        for path in chunk:
            try:
                with Image.open(path) as image:
                    image.load()
                    pixels.append(preprocess_image(image, preprocessing))
            except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
                raise ValueError(f"image {path} cannot be read: {err}") from None
        probabilities = torch.softmax(forward(model, torch.stack(pixels)).float(), dim=-1)
        best, index = probabilities.max(dim=-1)
        names = (list(class_names) if class_names is not None
                 and len(class_names) == probabilities.shape[-1] else None)
        out += [ImagePrediction(path, int(i), names[int(i)] if names else str(int(i)), float(p))
                for path, i, p in zip(chunk, index, best, strict=True)]
    return out
