"""Content fingerprints of a teacher and of the inputs it labels, so a stale cache is caught.

A cache of teacher outputs is only valid for the exact weights and the exact inputs, in order,
it was computed from. Hashing them is cheap next to running the teacher. Labels are left out
on purpose: relabeling the data does not change what the teacher says about it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from distill.batches import Batches


def _update(digest, tensor: Tensor) -> None:
    t = tensor.detach().cpu().contiguous()
    digest.update(f"{t.dtype}{tuple(t.shape)}".encode())
    digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())


def module_fingerprint(module: nn.Module) -> str:
    """sha256 of the module's class and every tensor in its state dict (names, shapes, bytes)."""
    digest = hashlib.sha256(f"{type(module).__module__}.{type(module).__qualname__}".encode())
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        _update(digest, tensor)
    return digest.hexdigest()


def teacher_fingerprint(teacher: Any) -> str:
    """A module's content hash, or what a teacher signal says identifies it."""
    if isinstance(teacher, nn.Module):
        return module_fingerprint(teacher)
    fingerprint = getattr(teacher, "fingerprint", None)
    if fingerprint is None:
        raise TypeError(
            f"cannot fingerprint a teacher of type {type(teacher).__name__}: pass an nn.Module "
            "or a teacher signal with a fingerprint() method"
        )
    return str(fingerprint())


def update_inputs(digest, inputs: Any) -> None:
    """Feed a batch's inputs (a tensor, or a mapping of them) into a hashlib ``digest``."""
    if isinstance(inputs, Tensor):
        _update(digest, inputs)
    elif isinstance(inputs, Mapping):
        for key in sorted(inputs):
            digest.update(str(key).encode())
            update_inputs(digest, inputs[key])
    else:
        digest.update(repr(inputs).encode())


def data_fingerprint(data: Any, batch_size: int = 1024) -> dict[str, Any]:
    """Row count and sha256 of every sample's inputs, in dataset order."""
    if isinstance(data, DataLoader):
        raise TypeError(
            "teacher outputs are cached by sample index: pass a map-style Dataset, not a "
            "DataLoader, so every row has a fixed index"
        )
    digest = hashlib.sha256()
    if isinstance(data, TensorDataset) and len(data.tensors) <= 2:
        _update(digest, data.tensors[0])  # the fast path: one tensor, no per-batch work
    else:
        for batch in Batches(data, batch_size, shuffle=False):
            update_inputs(digest, batch.inputs)
    return {"rows": len(data), "sha256": digest.hexdigest()}


def describe_changes(stored: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """What differs between two fingerprints, in words a user can act on."""
    changes = []
    if stored.get("teacher") != current.get("teacher"):
        changes.append(
            f"the teacher changed (weights hash {str(stored.get('teacher'))[:12]}… → "
            f"{str(current.get('teacher'))[:12]}…)"
        )
    old_data, new_data = stored.get("data", {}), current.get("data", {})
    if old_data.get("rows") != new_data.get("rows"):
        changes.append(f"the data changed ({old_data.get('rows')} rows → {new_data.get('rows')})")
    elif old_data != new_data:
        changes.append(
            f"the data changed (same {new_data.get('rows')} rows, different inputs or order)"
        )
    old_settings, new_settings = stored.get("settings", {}), current.get("settings", {})
    for key in sorted(set(old_settings) | set(new_settings)):
        if old_settings.get(key) != new_settings.get(key):
            changes.append(
                f"the setting {key!r} changed ({old_settings.get(key)!r} → "
                f"{new_settings.get(key)!r})"
            )
    return changes
