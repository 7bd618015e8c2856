"""Students made from a Hugging Face teacher: fewer of its blocks (weights kept), or narrower.

Keeping every other block with its weights, plus the embeddings and the head, is how DistilBERT
started its student: the student begins close to the teacher instead of from noise. A narrower
student (smaller hidden size or fewer heads) cannot reuse the weights and starts from scratch.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from torch import nn

from distill.hf.layers import block_names, blocks_path


def keep_layers(teacher: nn.Module, layers: Sequence[int] | None = None) -> nn.Module:
    """A copy of ``teacher`` with only the blocks ``layers`` (default: every other, from 0).

    Embeddings, final norm, pooler and head are copied too; the result is the teacher's own
    class, so ``save_pretrained``/``from_pretrained`` treat it like any other model.
    """
    count = len(block_names(teacher))
    keep = list(range(0, count, 2)) if layers is None else [int(i) for i in layers]
    if not keep:
        raise ValueError("layers is empty: a student needs at least one block")
    bad = [i for i in keep if not 0 <= i < count]
    if bad:
        raise ValueError(f"layer {bad[0]} is out of range: the teacher has {count} blocks")
    if len(set(keep)) != len(keep):
        raise ValueError(f"layers lists a block twice: {keep}")
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(keep)
    layer_types = getattr(config, "layer_types", None)
    if isinstance(layer_types, list) and len(layer_types) == count:
        config.layer_types = [layer_types[i] for i in keep]
    student = type(teacher)(config)
    path = blocks_path(teacher) + "."
    state = {}
    for key, value in teacher.state_dict().items():
        if key.startswith(path):
            index, rest = key[len(path):].split(".", 1)
            if int(index) in keep:
                state[f"{path}{keep.index(int(index))}.{rest}"] = value.clone()
        else:
            state[key] = value.clone()
    missing, unexpected = student.load_state_dict(state, strict=False)
    tied = set(getattr(student, "_tied_weights_keys", None) or ())
    missing = [k for k in missing if k not in tied]
    if missing or unexpected:
        raise RuntimeError(
            f"copying the teacher's weights left {len(missing)} student weights unset "
            f"({missing[:3]}) and {len(unexpected)} unused ({unexpected[:3]})"
        )
    return student.to(next(teacher.parameters()).dtype).eval()  # as from_pretrained returns


def scratch_student(teacher: nn.Module, **config_changes: Any) -> nn.Module:
    """A randomly initialised model of the teacher's class with a changed configuration.

    ``config_changes`` are Hugging Face config fields, e.g. ``num_hidden_layers=3,
    hidden_size=256, num_attention_heads=4, intermediate_size=1024``.
    """
    config = copy.deepcopy(teacher.config)
    unknown = [k for k in config_changes if not hasattr(config, k)]
    if unknown:
        raise ValueError(
            f"{type(config).__name__} has no field {unknown[0]!r}; fields include "
            "num_hidden_layers, hidden_size, num_attention_heads, intermediate_size"
        )
    for key, value in config_changes.items():
        setattr(config, key, value)
    heads = getattr(config, "num_attention_heads", None)
    if heads and config.hidden_size % heads:
        raise ValueError(
            f"hidden_size {config.hidden_size} is not divisible by num_attention_heads {heads}"
        )
    layer_types = getattr(config, "layer_types", None)
    if isinstance(layer_types, list) and len(layer_types) != config.num_hidden_layers:
        config.layer_types = [layer_types[i % len(layer_types)]
                              for i in range(config.num_hidden_layers)]
    return type(teacher)(config).eval()
