"""Structured pruning of Hugging Face transformers that keeps them loadable by transformers.

A transformers config describes every block with the same widths, so pruning here is uniform
across blocks: each block keeps the same number of MLP neurons (``intermediate_size`` is
updated) and, in llama-family decoders, the same number of attention head groups
(``num_attention_heads``/``num_key_value_heads``, with ``head_dim`` fixed).
Whole blocks go by Minitron's block importance: a block that barely changes its input (high
cosine similarity between what enters and what leaves it) is the cheapest to drop.

Torch-Pruning's dependency graph could prune these models too, but its per-layer widths cannot
be written into a standard config; the couplings inside a transformer block are few and known,
so they are written out here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from distill.batches import first_batches, forward
from distill.hf.layers import block_names, family_of
from distill.hf.students import keep_layers

Importance = Literal["magnitude", "taylor", "activation"]

# per family: (layers whose output rows are neurons, layers whose input columns are neurons)
_MLP = {
    "encoder.layer": (("intermediate.dense",), ("output.dense",)),
    "layers": (("mlp.gate_proj", "mlp.up_proj"), ("mlp.down_proj",)),
}


def _blocks(model: nn.Module) -> list[nn.Module]:
    return [model.get_submodule(name) for name in block_names(model)]


def _calibrate_gradients(model: nn.Module, data: Any, batches: int, batch_size: int) -> None:
    """Accumulate the loss gradient of ``batches`` labeled batches (for Taylor importance)."""
    model.zero_grad(set_to_none=True)
    device = next(model.parameters()).device
    for batch in first_batches(data, batches, batch_size, device):
        if batch.labels is None:
            raise ValueError("importance='taylor' needs labeled calibration data")
        logits = forward(model, batch.inputs)
        F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.labels.reshape(-1),
                        ignore_index=-100).backward()


def _calibration_inputs(model: nn.Module, data: Any, batches: int, batch_size: int,
                        handles: list) -> Iterator[Any]:
    """Run ``model`` (in eval mode) on ``batches`` batches of ``data``, yielding each batch's
    inputs after its forward pass; the hooks in ``handles`` are removed at the end."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        for batch in first_batches(data, batches, batch_size, device):
            forward(model, batch.inputs)
            yield batch.inputs
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)


def _score(weight: Tensor, importance: Importance, dim: int) -> Tensor:
    """Per-row (dim=1) or per-column (dim=0) importance of a weight matrix."""
    if importance == "taylor":
        if weight.grad is None:
            raise ValueError("no gradients for Taylor importance: calibration did not run")
        values = (weight.detach() * weight.grad).abs()
    else:
        values = weight.detach() ** 2
    return values.sum(dim=dim)


def _with_importance(model: nn.Module, importance: Importance, data: Any, batches: int,
                     batch_size: int, body: Callable[[], Any]) -> Any:
    if importance not in ("magnitude", "taylor", "activation"):
        raise ValueError(
            f"importance must be 'magnitude', 'taylor' or 'activation', got {importance!r}"
        )
    if importance == "activation" and data is None:
        raise ValueError("importance='activation' needs calibration data (data=...)")
    if importance == "taylor":
        if data is None:
            raise ValueError("importance='taylor' needs calibration data (data=...)")
        _calibrate_gradients(model, data, batches, batch_size)
    try:
        return body()
    finally:
        model.zero_grad(set_to_none=True)


def _select(linear: nn.Linear, index: Tensor, dim: int) -> nn.Linear:
    """A copy of ``linear`` keeping output rows (dim=0) or input columns (dim=1) ``index``."""
    weight = linear.weight.detach().index_select(dim, index)
    out = nn.Linear(weight.shape[1], weight.shape[0], bias=linear.bias is not None)
    out = out.to(device=weight.device, dtype=weight.dtype)
    out.weight.data.copy_(weight)
    if linear.bias is not None:
        bias = linear.bias.detach()
        out.bias.data.copy_(bias.index_select(0, index) if dim == 0 else bias)
    return out


def prune_neurons(model: nn.Module, ratio: float, *, importance: Importance = "magnitude",
                  data: Any = None, calibration_batches: int = 4,
                  batch_size: int = 32) -> nn.Module:
    """Remove ``ratio`` of every block's MLP neurons (in place; ``intermediate_size`` updated)."""
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"ratio must be within (0, 1), got {ratio}")
    rows, cols = _MLP[family_of(model).blocks]
    width = model.config.intermediate_size
    keep = max(1, round(width * (1.0 - ratio)))
    activity = (_neuron_activity(model, cols[0], data, calibration_batches, batch_size)
                if importance == "activation" else None)

    def body() -> None:
        for i, block in enumerate(_blocks(model)):
            if activity is not None:
                score = activity[i]
            else:
                score = sum(_score(block.get_submodule(n).weight, importance, 1) for n in rows)
                score = score + sum(_score(block.get_submodule(n).weight, importance, 0)
                                    for n in cols)
            index = score.topk(keep).indices.sort().values
            for n in rows:
                block.set_submodule(n, _select(block.get_submodule(n), index, 0))
            for n in cols:
                block.set_submodule(n, _select(block.get_submodule(n), index, 1))

    _with_importance(model, importance, data, calibration_batches, batch_size, body)
    model.config.intermediate_size = keep
    return model


@torch.no_grad()
def _neuron_activity(model: nn.Module, reader: str, data: Any, batches: int,
                     batch_size: int) -> list[Tensor]:
    """Mean absolute value of each MLP neuron (the input of ``reader``, the layer that reads
    the neurons) over the tokens of ``batches`` calibration batches, per block."""
    blocks = _blocks(model)
    sums: list[Tensor | float] = [0.0] * len(blocks)
    counts = [0] * len(blocks)

    def hook(i: int):
        def record(module, args):
            values = args[0].abs().flatten(0, -2)
            sums[i] = sums[i] + values.sum(0)
            counts[i] += values.shape[0]
        return record

    handles = [b.get_submodule(reader).register_forward_pre_hook(hook(i))
               for i, b in enumerate(blocks)]
    for _ in _calibration_inputs(model, data, batches, batch_size, handles):
        pass
    return [s / max(c, 1) for s, c in zip(sums, counts, strict=True)]


def prune_heads(model: nn.Module, ratio: float, *, importance: Importance = "magnitude",
                data: Any = None, calibration_batches: int = 4, batch_size: int = 32) -> nn.Module:
    """Remove ``ratio`` of every block's key/value head groups (llama-family, in place).

    With grouped-query attention a key/value head serves ``num_attention_heads /
    num_key_value_heads`` query heads; a group goes with all of them, so the ratio of query
    to key/value heads stays valid. ``head_dim`` is written into the config, so the smaller
    model reloads with transformers alone. BERT-family configs derive the head size from the
    hidden size and (since transformers 5) cannot record pruned heads: prune their neurons or
    blocks instead.
    """
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"ratio must be within (0, 1), got {ratio}")
    config = model.config
    if family_of(model).blocks != "layers":
        raise ValueError(
            f"head pruning is supported for llama-family decoders; a {config.model_type!r} "
            "config cannot describe fewer heads of the same size: prune neurons or blocks"
        )
    groups = config.num_key_value_heads
    per_group = config.num_attention_heads // groups
    keep = max(1, round(groups * (1.0 - ratio)))
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads

    def body() -> None:
        for block in _blocks(model):
            attention = block.self_attn
            q = _score(attention.q_proj.weight, importance, 1).reshape(groups, -1).sum(1)
            kv = sum(_score(getattr(attention, n).weight, importance, 1).reshape(groups, -1).sum(1)
                     for n in ("k_proj", "v_proj"))
            o = _score(attention.o_proj.weight, importance, 0).reshape(groups, -1).sum(1)
            chosen = (q + kv + o).topk(keep).indices.sort().values
            kv_index = (chosen[:, None] * head_dim + torch.arange(head_dim)).flatten()
            span = per_group * head_dim
            q_index = (chosen[:, None] * span + torch.arange(span)).flatten()
            attention.q_proj = _select(attention.q_proj, q_index, 0)
            attention.k_proj = _select(attention.k_proj, kv_index, 0)
            attention.v_proj = _select(attention.v_proj, kv_index, 0)
            attention.o_proj = _select(attention.o_proj, q_index, 1)

    _with_importance(model, importance, data, calibration_batches, batch_size, body)
    config.head_dim = head_dim
    config.num_key_value_heads = keep
    config.num_attention_heads = keep * per_group
    return model


@torch.no_grad()
def block_importance(model: nn.Module, data: Any, *, batches: int = 4,
                     batch_size: int = 32) -> list[float]:
    """Per block, ``1 - cosine(input, output)`` of its hidden states on ``data`` (Minitron's
    block importance): near zero for a block that hardly changes what flows through it."""
    blocks = _blocks(model)
    sums = [0.0] * len(blocks)
    counts = [0] * len(blocks)
    captured: dict[int, tuple[Tensor, Tensor]] = {}

    def hook(i: int):
        def record(module, args, kwargs, output):
            hidden_in = args[0] if args else kwargs["hidden_states"]
            hidden_out = output[0] if isinstance(output, tuple) else output
            captured[i] = (hidden_in, hidden_out)
        return record

    handles = [b.register_forward_hook(hook(i), with_kwargs=True) for i, b in enumerate(blocks)]
    for inputs in _calibration_inputs(model, data, batches, batch_size, handles):
        mask = inputs.get("attention_mask") if isinstance(inputs, dict) else None
        for i, (h_in, h_out) in captured.items():
            cos = F.cosine_similarity(h_in.float(), h_out.float(), dim=-1)
            keep = mask.bool() if mask is not None else torch.ones_like(cos, dtype=torch.bool)
            sums[i] += float((1.0 - cos)[keep].sum())
            counts[i] += int(keep.sum())
    return [s / max(c, 1) for s, c in zip(sums, counts, strict=True)]


def drop_blocks(model: nn.Module, count: int, data: Any, *, batches: int = 4,
                batch_size: int = 32, protect: Iterable[int] = ()) -> nn.Module:
    """A copy of ``model`` without its ``count`` least important blocks (block importance on
    ``data``); blocks in ``protect`` are always kept."""
    scores = block_importance(model, data, batches=batches, batch_size=batch_size)
    if not 0 < count < len(scores):
        raise ValueError(f"count must be within [1, {len(scores) - 1}], got {count}")
    protected = set(protect)
    order = sorted((s, i) for i, s in enumerate(scores) if i not in protected)
    dropped = {i for _, i in order[:count]}
    return keep_layers(model, [i for i in range(len(scores)) if i not in dropped])
