"""A pretrained causal LM cut down to a parameter budget, with the cut chosen by measurement.

Depth removes whole blocks, ranked by a criterion on calibration text:

- ``"cosine"``: Minitron's block importance, 1 − cosine between what enters and what leaves a
  block (:func:`distill.hf.pruning.block_importance`);
- ``"skip"``: how much the calibration loss rises when that block alone is skipped (its input
  passed on unchanged), measured directly rather than inferred from the hidden states;
- ``"every-other"``: no measurement, DistilBERT's rule: the blocks kept are spread evenly
  from the first to the last (every other one when halving), the reference a measured ranking
  has to beat.

Width removes the same number of MLP neurons from every block, the least active on calibration
text first (Minitron's activation importance; :func:`distill.hf.pruning.prune_neurons`), so the
result is still one standard config. Both (Minitron's mix): keep a chosen number of blocks,
the most important by the depth criterion, then narrow every kept block's MLP to the budget; at
batch 1 the block count sets the decode speed, so this spends the rest of the budget on width,
which loses less. Every way the target is a parameter count, or a share of
the model's parameters (embeddings included), and the result is the model's own class: its
``save_pretrained`` folder loads with transformers alone. :func:`compare_pruning` gives each
criterion's held-out perplexity before any recovery, which is what the ranking bought.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from distill import atomic
from distill.batches import first_batches, forward
from distill.hf.layers import block_names
from distill.hf.pruning import block_importance, prune_neurons
from distill.hf.students import keep_layers

Criterion = Literal["cosine", "skip", "every-other"]
FAMILIES = ("llama", "mistral", "qwen2", "qwen3")  # one decoder layout: gate/up/down, q/k/v/o
CRITERIA: tuple[str, ...] = ("every-other", "cosine", "skip")


def parameter_count(model: nn.Module) -> int:
    """Parameters as stored: a tied head counts once."""
    return sum(p.numel() for p in model.parameters())


def _check_family(model: nn.Module) -> None:
    kind = getattr(getattr(model, "config", None), "model_type", None)
    if kind not in FAMILIES:
        raise ValueError(f"causal-LM pruning supports the llama family ({', '.join(FAMILIES)}; "
                         f"SmolLM2 is llama); this model is {kind!r}")


def target_parameters(model: nn.Module, size: float) -> int:
    """``size`` as a parameter count: a share of the model's in (0, 1), or a count above 1."""
    total = parameter_count(model)
    if isinstance(size, bool) or not isinstance(size, int | float) or size <= 0:
        raise ValueError(f"size must be a share in (0, 1) or a parameter count, got {size!r}")
    target = int(total * size) if size < 1 else int(size)
    if target >= total:
        raise ValueError(f"size {size!r} asks for {target:,} parameters; the model has only "
                         f"{total:,}")
    return target


def _blocks(model: nn.Module) -> list[nn.Module]:
    return [model.get_submodule(name) for name in block_names(model)]


@torch.no_grad()
def _calibration_loss(model: nn.Module, data: Any, batches: int, batch_size: int) -> float:
    total, tokens = 0.0, 0
    device = next(model.parameters()).device
    for batch in first_batches(data, batches, batch_size, device):
        if batch.labels is None:
            raise ValueError("the calibration text needs next-token labels (causal_blocks)")
        logits = forward(model, batch.inputs)
        labels = batch.labels.reshape(-1)
        total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels,
                                       ignore_index=-100, reduction="sum"))
        tokens += int((labels != -100).sum())
    return total / max(tokens, 1)


def skip_importance(model: nn.Module, data: Any, *, batches: int = 4,
                    batch_size: int = 8) -> list[float]:
    """Per block, the calibration loss with that block skipped minus the loss with all of them:
    near zero (or below) for a block the model does not need on this text."""
    _check_family(model)
    was_training = model.training
    model.eval()

    def passthrough(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> Any:
        hidden_in = args[0] if args else kwargs["hidden_states"]
        return (hidden_in, *output[1:]) if isinstance(output, tuple) else hidden_in

    try:
        base = _calibration_loss(model, data, batches, batch_size)
        scores = []
        for block in _blocks(model):
            handle = block.register_forward_hook(passthrough, with_kwargs=True)
            try:
                scores.append(_calibration_loss(model, data, batches, batch_size) - base)
            finally:
                handle.remove()
    finally:
        model.train(was_training)
    return scores


def block_scores(model: nn.Module, data: Any, criterion: Criterion, *, batches: int = 4,
                 batch_size: int = 8, cache: str | Path | None = None) -> list[float]:
    """Each block's importance by ``criterion`` (lower: dropped first). With ``cache`` (a
    folder), scores measured before on the very same weights and calibration batches are read
    back instead of measured again: "skip" runs the model once per block (tens of minutes for
    a 135M model on a CPU), and every run cut from one teacher on one text makes the same cut."""
    count = len(block_names(model))
    if criterion == "every-other":  # halving: the even blocks stay (see _evenly_spaced)
        return [float(i % 2 == 0) for i in range(count)]
    if criterion not in ("cosine", "skip"):
        raise ValueError(f"criterion must be one of {', '.join(CRITERIA)}; got {criterion!r}")
    path = None
    if cache is not None:
        path = Path(cache) / f"{_scores_key(model, data, criterion, batches, batch_size)}.json"
        found = _read_scores(path, count)
        if found is not None:
            return found
    if criterion == "cosine":
        scores = block_importance(model, data, batches=batches, batch_size=batch_size)
    else:
        scores = skip_importance(model, data, batches=batches, batch_size=batch_size)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_json(path, {"criterion": criterion, "scores": [float(v) for v in scores]})
    return scores


def _scores_key(model: nn.Module, data: Any, criterion: str, batches: int, batch_size: int
                ) -> str:
    """sha256 of what the scores depend on: the weights, the calibration batches' tokens, the
    criterion and how many batches of what size."""
    from distill.teachers.fingerprint import module_fingerprint, update_inputs

    digest = hashlib.sha256(json.dumps([module_fingerprint(model), criterion, batches,
                                        batch_size]).encode())
    for batch in first_batches(data, batches, batch_size):
        update_inputs(digest, batch.inputs)
    return digest.hexdigest()[:32]


def _read_scores(path: Path, blocks: int) -> list[float] | None:
    """Cached scores, or None when there are none or the file is not what this cache writes
    (then they are measured again and the file replaced): data only, size-checked first."""
    if not path.is_file() or path.is_symlink() or path.stat().st_size > 64 * (blocks + 16):
        return None
    try:
        scores = json.loads(path.read_text())["scores"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None
    ok = (isinstance(scores, list) and len(scores) == blocks
          and all(isinstance(v, float) and math.isfinite(v) for v in scores))
    return scores if ok else None


def blocks_to_drop(model: nn.Module, target: int) -> int:
    """How many whole blocks must go for ``target`` parameters; an error naming the smallest
    size depth pruning reaches when even one block left is too many."""
    blocks = _blocks(model)
    per_block = parameter_count(blocks[0])
    total = parameter_count(model)
    count = max(0, math.ceil((total - target) / per_block))
    if count >= len(blocks):
        smallest = total - (len(blocks) - 1) * per_block
        raise ValueError(f"depth pruning cannot reach {target:,} parameters: with one of its "
                         f"{len(blocks)} blocks left the model still has {smallest:,} (the "
                         "embeddings and head); ask for at least that, or prune width too")
    return count


def _kept_groups(model: nn.Module, head_groups: float) -> int:
    if not 0.0 <= head_groups < 1.0:
        raise ValueError(f"head_groups must be a share in [0, 1), got {head_groups}")
    groups = model.config.num_key_value_heads
    return max(1, round(groups * (1.0 - head_groups)))  # as prune_heads rounds


def _attention_per_group(block: nn.Module, groups: int) -> int:
    """Parameters one key/value head group (with its query heads) holds in a block: q, k, v
    and o's input columns all scale with the groups (o's bias does not)."""
    attention = block.self_attn
    sliced = sum(parameter_count(getattr(attention, n)) for n in ("q_proj", "k_proj", "v_proj"))
    return (sliced + attention.o_proj.weight.numel()) // groups


def mlp_width_for(model: nn.Module, target: int, *, blocks: int | None = None,
                  head_groups: float = 0.0) -> int:
    """The MLP width that brings ``model`` to at most ``target`` parameters once only
    ``blocks`` blocks are left (all by default) and ``head_groups`` of each block's key/value
    groups are gone; the model's shapes alone decide it (a model on the meta device will do).
    An error naming the nearest reachable size when one neuron a block is still too many."""
    _check_family(model)
    layers = _blocks(model)
    blocks = len(layers) if blocks is None else blocks
    if not 1 <= blocks <= len(layers):
        raise ValueError(f"blocks must be between 1 and the model's {len(layers)}, got {blocks}")
    config = model.config
    groups = config.num_key_value_heads
    drop_groups = groups - _kept_groups(model, head_groups)
    total = (parameter_count(model) - (len(layers) - blocks) * parameter_count(layers[0])
             - blocks * drop_groups * _attention_per_group(layers[0], groups))
    width = config.intermediate_size
    per_neuron = 3 * config.hidden_size * blocks  # a row of gate and up, a column of down
    keep = width - max(0, math.ceil((total - target) / per_neuron))
    if keep < 1:
        smallest = total - (width - 1) * per_neuron
        kept = "" if blocks == len(layers) else f"{blocks} blocks, "
        raise ValueError(f"width pruning cannot reach {target:,} parameters: with {kept}one "
                         f"MLP neuron per block the model still has {smallest:,}; ask for at "
                         "least that, or " + ("keep fewer blocks" if kept else
                                              "prune depth too"))
    return keep


def check_cut(model: nn.Module, size: float, way: str, *, blocks: int | None = None,
              head_groups: float = 0.0) -> dict[str, int]:
    """What cutting ``model`` to ``size`` by ``way`` (``"depth"``, ``"width"`` or
    ``"depth+width"`` with ``blocks`` kept) leaves, from its shapes alone, before any
    calibration: blocks and MLP width. A ValueError when the budget is out of reach."""
    _check_family(model)
    target = target_parameters(model, size)
    layers = len(_blocks(model))
    if way == "depth":
        return {"blocks": layers - blocks_to_drop(model, target),
                "intermediate_size": model.config.intermediate_size}
    if way == "width":
        return {"blocks": layers, "intermediate_size": mlp_width_for(
            model, target, head_groups=head_groups)}
    if way == "depth+width":
        if blocks is None:
            raise ValueError("way 'depth+width' keeps a chosen number of blocks: pass blocks")
        return {"blocks": blocks, "intermediate_size": mlp_width_for(
            model, target, blocks=blocks, head_groups=head_groups)}
    raise ValueError(f"way must be 'depth', 'width' or 'depth+width', got {way!r}")


def prune_depth(model: nn.Module, size: float, data: Any = None, *,
                criterion: Criterion = "cosine", protect: Iterable[int] = (),
                batches: int = 4, batch_size: int = 8,
                cache: str | Path | None = None) -> nn.Module:
    """A copy of ``model`` with the fewest blocks dropped that bring it to ``size``
    (:func:`target_parameters`), the least important by ``criterion`` first; blocks in
    ``protect`` stay. ``cache``: a folder for the blocks' scores (:func:`block_scores`)."""
    _check_family(model)
    count = blocks_to_drop(model, target_parameters(model, size))
    return _drop_blocks(model, count, data, criterion=criterion, protect=protect,
                        batches=batches, batch_size=batch_size, cache=cache)


def _drop_blocks(model: nn.Module, count: int, data: Any, *, criterion: Criterion,
                 protect: Iterable[int], batches: int, batch_size: int,
                 cache: str | Path | None) -> nn.Module:
    if count == 0:
        return copy.deepcopy(model)
    if criterion == "every-other":
        kept = _evenly_spaced(len(block_names(model)), count, set(protect))
        return keep_layers(model, kept)
    if data is None:
        raise ValueError(f"criterion {criterion!r} measures blocks on calibration text: pass "
                         "data (next-token blocks, e.g. distill.lm.causal_blocks)")
    scores = block_scores(model, data, criterion, batches=batches, batch_size=batch_size,
                          cache=cache)
    protected = set(protect)
    order = sorted((score, i) for i, score in enumerate(scores) if i not in protected)
    if count > len(order):
        raise ValueError(f"{count} blocks must go, but only {len(order)} are not protected")
    dropped = {i for _, i in order[:count]}
    return keep_layers(model, [i for i in range(len(scores)) if i not in dropped])


def _evenly_spaced(blocks: int, drop: int, protect: set[int]) -> list[int]:
    """``blocks - drop`` block indices spread evenly from the first block to the last (the
    protected ones swapped in for their nearest neighbours)."""
    keep = blocks - drop
    chosen = sorted({round(i * (blocks - 1) / max(keep - 1, 1)) for i in range(keep)})
    for block in sorted(protect - set(chosen)):
        nearest = min((c for c in chosen if c not in protect), key=lambda c: abs(c - block),
                      default=None)
        if nearest is None:
            raise ValueError(f"{drop} blocks must go, but only {blocks - len(protect)} are not "
                             "protected")
        chosen[chosen.index(nearest)] = block
    return sorted(chosen)


def prune_width(model: nn.Module, size: float, data: Any, *, head_groups: float = 0.0,
                batches: int = 4, batch_size: int = 8) -> nn.Module:
    """A copy of ``model`` cut to ``size`` (:func:`target_parameters`) in width: first
    ``head_groups`` of every block's key/value head groups (with their query heads; ranked by
    first-order loss change on ``data``), then the MLP neurons least active on ``data``, as many
    as the budget still needs."""
    _check_family(model)
    keep = mlp_width_for(model, target_parameters(model, size), head_groups=head_groups)
    pruned = copy.deepcopy(model)
    if head_groups:
        from distill.hf.pruning import prune_heads

        prune_heads(pruned, head_groups, importance="taylor", data=data,
                    calibration_batches=batches, batch_size=batch_size)
    width = pruned.config.intermediate_size
    if keep == width:
        return pruned
    return prune_neurons(pruned, (width - keep) / width, importance="activation", data=data,
                         calibration_batches=batches, batch_size=batch_size)


def prune_depth_width(model: nn.Module, size: float, data: Any, *, blocks: int,
                      criterion: Criterion = "skip", head_groups: float = 0.0,
                      protect: Iterable[int] = (), batches: int = 4, batch_size: int = 8,
                      cache: str | Path | None = None) -> nn.Module:
    """A copy of ``model`` with ``blocks`` blocks kept (the most important by ``criterion``),
    then cut in width (:func:`prune_width`, measured on the shallower model) to ``size``, when
    the blocks alone leave it over. The budget is checked before anything is measured."""
    check_cut(model, size, "depth+width", blocks=blocks, head_groups=head_groups)
    shallow = _drop_blocks(model, len(_blocks(model)) - blocks, data, criterion=criterion,
                           protect=protect, batches=batches, batch_size=batch_size, cache=cache)
    target = target_parameters(model, size)  # the budget is the original model's share
    if parameter_count(shallow) <= target:  # the blocks alone met the budget
        return shallow
    return prune_width(shallow, target, data, head_groups=head_groups, batches=batches,
                       batch_size=batch_size)


def compare_pruning(model: nn.Module, size: float, calibration: Any, held_out: Any, *,
                    ways: Sequence[str] = ("every-other", "cosine", "skip", "width"),
                    batches: int = 4, batch_size: int = 8) -> list[dict[str, Any]]:
    """Each way of reaching ``size`` (a depth criterion, or ``"width"``; ``"depth+width"`` is
    left out: it needs a block count), pruned and not yet recovered: its parameters, blocks,
    MLP width and held-out perplexity."""
    from distill.lm.evaluate import lm_metrics

    rows = []
    for way in ways:
        pruned = (prune_width(model, size, calibration, batches=batches, batch_size=batch_size)
                  if way == "width" else
                  prune_depth(model, size, calibration, criterion=way,  # type: ignore[arg-type]
                              batches=batches, batch_size=batch_size))
        rows.append({"way": way, "params": parameter_count(pruned),
                     "blocks": pruned.config.num_hidden_layers,
                     "intermediate_size": pruned.config.intermediate_size,
                     "perplexity": lm_metrics(pruned, held_out, batch_size=batch_size)[
                         "perplexity"]})
    return rows
