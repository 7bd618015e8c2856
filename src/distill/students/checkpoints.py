"""Weights from a checkpoint file into a model that is already built, for any architecture.

safetensors files load always: they hold tensors and nothing else. PyTorch's ``.pt``/``.pth``/
``.bin`` files are pickles, which can run code as they load, so they are read only with
``allow_pickle=True``, and then with ``torch.load(weights_only=True)`` (tensors and plain
containers only). A file whose tensors do not fit the model is refused with one message naming
the first misfit and both shapes, before any weight is copied.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from distill.artifacts import PICKLE_SUFFIXES, ArtifactError, PickleRefusedError

SAFETENSORS_SUFFIX = ".safetensors"
# where training scripts commonly nest the weights inside a pickled checkpoint
NESTED_KEYS = ("state_dict", "model_state_dict", "model", "module", "student")
SHOWN = 3  # key names listed per kind of mismatch


class WeightsMismatchError(ArtifactError):
    """A checkpoint's tensors do not fit the model (names or shapes); the message says which."""


def load_weights(model: nn.Module, file: str | Path, *, allow_pickle: bool = False,
                 strict: bool = True) -> nn.Module:
    """Copy the tensors in ``file`` into ``model`` (in place) and return it.

    ``strict=False`` tolerates tensors the file lacks or the model lacks (a new head, an extra
    projection); a tensor present in both with different shapes is refused either way. A
    pickled checkpoint that nests its weights (``{"state_dict": ...}``, ``{"model": ...}``) or
    prefixes them with DistributedDataParallel's ``module.`` is unwrapped.
    """
    path = Path(file)
    tensors = _read(path, allow_pickle)
    expected = model.state_dict()
    _check_fit(path, tensors, expected, strict)
    with torch.no_grad():
        model.load_state_dict(tensors, strict=strict)
    return model


def _read(path: Path, allow_pickle: bool) -> dict[str, Tensor]:
    if path.is_dir():
        raise ArtifactError(f"{path} is a folder; load_weights reads one weights file "
                            "(a folder saved by distill.save opens with distill.load)")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    if path.suffix == SAFETENSORS_SUFFIX:
        import safetensors.torch

        try:
            return safetensors.torch.load_file(str(path))
        except Exception as err:  # safetensors raises several types for corrupt files
            raise ArtifactError(f"{path}: not a readable safetensors file ({err})") from err
    if path.suffix not in PICKLE_SUFFIXES:
        raise ArtifactError(
            f"{path}: unknown weights format {path.suffix!r}; expected {SAFETENSORS_SUFFIX} or "
            f"a PyTorch pickle ({', '.join(PICKLE_SUFFIXES)})")
    if not allow_pickle:
        raise PickleRefusedError(
            f"{path} is a pickle, which can run code when loaded; pass allow_pickle=True if you "
            "trust its source (it is then read with torch.load(weights_only=True)), or convert "
            "it to safetensors")
    try:
        loaded = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError for objects weights_only refuses, and corrupt files
        raise ArtifactError(
            f"{path}: cannot read it as a checkpoint of plain tensors ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}); a pickle of whole objects is "
            "not loaded here (weights_only=True)") from err
    return _state_dict_in(loaded, path)


def _state_dict_in(loaded: object, path: Path) -> dict[str, Tensor]:
    """The name -> tensor mapping inside a pickled checkpoint."""
    if isinstance(loaded, nn.Module):  # weights_only never returns one; kept for clarity
        loaded = loaded.state_dict()
    if not isinstance(loaded, Mapping):
        raise ArtifactError(f"{path} holds a {type(loaded).__name__}, not a mapping of tensor "
                            "names to tensors (a state dict)")
    for key in NESTED_KEYS:
        if not _all_tensors(loaded) and isinstance(loaded.get(key), Mapping):
            loaded = loaded[key]
    if not _all_tensors(loaded):
        odd = next(k for k, v in loaded.items() if not isinstance(v, Tensor))
        raise ArtifactError(
            f"{path}: entry {odd!r} is a {type(loaded[odd]).__name__}, not a tensor; expected "
            f"a state dict, or one nested under {', '.join(repr(k) for k in NESTED_KEYS)}")
    tensors = {str(k): v for k, v in loaded.items()}
    if tensors and all(k.startswith("module.") for k in tensors):  # saved from a DDP wrapper
        tensors = {k.removeprefix("module."): v for k, v in tensors.items()}
    return tensors


def _all_tensors(mapping: Mapping) -> bool:
    return bool(mapping) and all(isinstance(v, Tensor) for v in mapping.values())


def _check_fit(path: Path, tensors: Mapping[str, Tensor], expected: Mapping[str, Tensor],
               strict: bool) -> None:
    misfits = [k for k in expected if k in tensors and tensors[k].shape != expected[k].shape]
    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    if not misfits and (not strict or not (missing or unexpected)):
        return
    parts = []
    if misfits:
        first = misfits[0]
        parts.append(f"tensor {first!r} has shape {tuple(tensors[first].shape)} in the file but "
                     f"{tuple(expected[first].shape)} in the model ({len(misfits)} of "
                     f"{len(expected)} tensors differ in shape)")
    if strict and missing:
        parts.append(f"{len(missing)} missing from the file ({_few(missing)})")
    if strict and unexpected:
        parts.append(f"{len(unexpected)} in the file but not in the model ({_few(unexpected)})")
    hint = "" if misfits else "; pass strict=False to load the tensors both have"
    raise WeightsMismatchError(f"{path} does not fit the model: {'; '.join(parts)}{hint}")


def _few(keys: list[str]) -> str:
    shown = ", ".join(repr(k) for k in keys[:SHOWN])
    return shown + (", ..." if len(keys) > SHOWN else "")
