"""A training checkpoint is one file, replaced whole at every epoch's end (and, with
``checkpoint_steps``, every so many batches inside an epoch).

``checkpoint.safetensors`` holds the student's weights (``model.*``), and, when the run can be
continued, the optimizer's tensors (``optim.*``), the training-only parts of the loss
(``loss.*``) and the random-number states (``rng.*``); its safetensors metadata holds the rest
as JSON (epoch, the epoch's record, the optimizer's settings, the schedule's position, the
history so far; inside an epoch, the batches done and the random states the epoch began
with, which give its batch order again). One file, written to a temporary name, flushed to
disk and renamed over the last one, is the unit of a checkpoint: a reader sees all of one
epoch or all of the one before, never the weights of one with the optimizer of another,
whatever instant the process died at.
No pickle: safetensors and JSON only, and a checkpoint from disk is checked before it is used.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch
from torch import Tensor, nn

from distill import atomic
from distill.engine.loss_trace import LossTrace

CHECKPOINT = "checkpoint.safetensors"
FORMAT = "distill.checkpoint/1"
META = "distill.checkpoint"  # the safetensors metadata key holding the JSON part
# settings that must match for a checkpoint to be continued
SAME = ("epochs", "batch_size", "lr", "optimizer", "weight_decay", "schedule", "warmup_ratio",
        "grad_clip", "accumulate", "precision", "seed")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: damaged, or from another model or run."""


def _flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, Tensor):
                tensors[f"optim.{index}.{name}"] = value.detach().contiguous().cpu()
            else:
                scalars[f"{index}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    for key, value in meta["scalars"].items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def _own_storage(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """safetensors refuses tensors that share memory (tied weights): give each its own."""
    seen: set[int] = set()
    out = {}
    for key, value in tensors.items():
        value = value.detach().contiguous().cpu()
        pointer = value.untyped_storage().data_ptr() if value.numel() else None
        if pointer is not None and pointer in seen:
            value = value.clone()
        elif pointer is not None:
            seen.add(pointer)
        out[key] = value
    return out


def training_state(run: Any, within: dict[str, Any] | None = None
                   ) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """What ``run`` (a ``_Run``) needs beyond the weights to continue exactly where it is;
    ``within``: the position inside an epoch (batches done, their loss sum and count), saved
    with the random states the epoch started from, which give its batch order again."""
    optimizer_tensors, optimizer_meta = _flatten_optimizer(run.optimizer.state_dict())
    tensors = {**optimizer_tensors, "rng.torch": torch.get_rng_state()}
    generator = run.batches.generator
    if generator is not None:
        tensors["rng.data_order"] = generator.get_state()
    if within is not None:
        start_torch, start_order = run.epoch_rng
        tensors["rng.epoch_torch"] = start_torch
        if start_order is not None:
            tensors["rng.epoch_data_order"] = start_order
    tensors.update({f"loss.{k}": v.detach().contiguous().cpu()
                    for k, v in run.loss.state_dict().items()})
    settings = run.config.describe()
    meta = {"optimizer": optimizer_meta, "scheduler": run.scheduler.state_dict(),
            "history": run.state.history, "global_step": run.state.global_step,
            "samples": run.state.samples, "settings": {k: settings[k] for k in SAME}}
    if within is not None:
        meta["within_epoch"] = within
    return tensors, meta


def save(folder: Path, model: nn.Module, epoch: int, record: dict[str, Any],
         training: tuple[dict[str, Tensor], dict[str, Any]] | None = None) -> Path:
    """Replace the checkpoint in ``folder`` by ``model`` after ``epoch`` epochs (and the
    training state that continues from there, when given); all of it or nothing."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    meta: dict[str, Any] = {"format": FORMAT, "epoch": epoch, "record": record}
    if training is not None:
        extra, meta["training"] = training
        tensors.update(extra)
    text = json.dumps(meta, allow_nan=True)  # fail before writing anything that can't be stored
    path = Path(folder) / CHECKPOINT
    atomic.write_with(path, lambda p: safetensors.torch.save_file(
        _own_storage(tensors), str(p), metadata={META: text}))
    return path


def read(folder: Path, device: str | torch.device = "cpu"
         ) -> tuple[dict[str, Tensor], dict[str, Any]] | None:
    """The tensors and metadata of the checkpoint in ``folder``; None when there is none."""
    folder = Path(folder)
    path = folder / CHECKPOINT
    if not path.exists():
        return None
    if path.is_symlink() or not path.is_file():
        raise CheckpointError(f"{path}: not a regular file; remove it to start over")
    try:
        with safetensors.safe_open(str(path), framework="pt", device=str(device)) as f:
            text = (f.metadata() or {}).get(META)
            tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118
        meta = json.loads(text) if text is not None else None
    except Exception as err:  # safetensors raises several types for a damaged file
        raise CheckpointError(f"{path}: unreadable checkpoint ({err}); remove it to start "
                              "over") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a distill checkpoint ({FORMAT}); remove it to start "
                              "over")
    epoch = meta.get("epoch")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise CheckpointError(f"{path}: 'epoch' must be a non-negative integer, got {epoch!r}")
    return tensors, meta


def model_weights(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}


def load_weights(model: nn.Module, tensors: dict[str, Tensor], path: Path) -> None:
    try:
        model.load_state_dict(model_weights(tensors))
    except RuntimeError as err:  # other keys or shapes: the checkpoint of another model
        raise CheckpointError(f"{path}: does not fit this model: {str(err)[:500]}") from err


def _within_epoch(within: dict[str, Any], tensors: dict[str, Tensor], batches: int,
                  path: Path) -> dict[str, Any]:
    """A checkpoint's position inside an epoch, checked against this run's batches."""
    step = within["step"]
    if not isinstance(within["loss_sum"], float) or not isinstance(within["loss_samples"], int):
        raise CheckpointError(f"{path}: its position inside the epoch is incomplete "
                              f"({within!r}); remove it to start over")
    if not isinstance(step, int) or isinstance(step, bool) or not 0 < step < batches:
        raise CheckpointError(f"{path}: it stopped after batch {step!r} of an epoch, but this "
                              f"run has {batches} batches per epoch: was the data changed? "
                              "Remove it to start over")
    try:
        trace = LossTrace.from_json(within.get("trace"), batches, step)
    except ValueError as err:
        raise CheckpointError(f"{path}: {err}; remove it to start over") from err
    found = {**within, "trace": trace, "now": tensors["rng.torch"].cpu(),
             "torch": tensors["rng.epoch_torch"].cpu(),
             "data_order": (tensors["rng.epoch_data_order"].cpu()
                            if "rng.epoch_data_order" in tensors else None)}
    # the epoch's random states are used only when it restarts: checked now, by shape
    like = torch.Generator().get_state()
    for name in ("torch", "data_order"):
        state = found[name]
        if state is not None and (state.dtype != like.dtype or state.shape != like.shape):
            raise CheckpointError(f"{path}: the epoch's {name} random state is not one "
                                  f"({state.dtype}, {tuple(state.shape)}); remove it to start "
                                  "over")
    return found


def load(folder: Path, run: Any) -> int:
    """Put the checkpoint in ``folder`` into ``run``; the number of epochs it had finished
    (0 when there is none to continue), and in ``run.within`` where inside the next epoch it
    stopped, when it was written inside one. Leftovers of writes that a kill interrupted are
    removed first: the last complete checkpoint is the file itself, never a temporary one."""
    atomic.remove_temporaries(folder)
    found = read(folder, run.device)
    if found is None:
        return 0
    tensors, meta = found
    training = meta.get("training")
    if training is None:
        return 0  # weights only (before the first epoch, or a sharded run): start over
    path = Path(folder) / CHECKPOINT
    settings = run.config.describe()
    try:
        saved = training["settings"]
        changed = {k: (saved[k], settings[k]) for k in SAME if settings[k] != saved.get(k)}
    except (KeyError, TypeError) as err:
        raise CheckpointError(f"{path}: incomplete training state ({err!r})") from err
    if changed:
        name, (was, now) = next(iter(changed.items()))
        raise ValueError(f"the checkpoint in {folder} comes from a run with other settings "
                         f"({name} was {was!r}, now {now!r}); remove it to start over")
    try:
        load_weights(run.model, tensors, path)
        loss_state = {k[len("loss."):]: v for k, v in tensors.items() if k.startswith("loss.")}
        if loss_state:
            run.loss.load_state_dict(loss_state)
        run.optimizer.load_state_dict(_unflatten_optimizer(tensors, training["optimizer"]))
        run.scheduler.load_state_dict(training["scheduler"])
        torch.set_rng_state(tensors["rng.torch"].cpu())
        if "rng.data_order" in tensors and run.batches.generator is not None:
            run.batches.generator.set_state(tensors["rng.data_order"].cpu())
        run.state.history[:] = training["history"]
        run.state.global_step, run.state.samples = training["global_step"], training["samples"]
        within = training.get("within_epoch")
        if within is not None:
            run.within = _within_epoch(within, tensors, len(run.batches), path)
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        if isinstance(err, CheckpointError):
            raise
        raise CheckpointError(f"{path}: cannot continue from it ({err!r}); remove it to start "
                              "over") from err
    return int(meta["epoch"])
