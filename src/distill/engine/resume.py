"""Everything a training run needs to continue after a crash, written at every epoch's end.

Beside the student's last good weights (``last.safetensors``), ``training.safetensors`` holds
the optimizer's tensors, the training-only parts of the loss (e.g. layer projections) and the
random-number states (torch's, and the data order's); ``training.json`` holds the rest (the
optimizer's settings, the schedule's position, the history so far) and is written last, so a
folder with it is a complete checkpoint. No pickle: safetensors and JSON only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from torch import Tensor

from distill import atomic

TENSORS, META = "training.safetensors", "training.json"
# settings that must match for a checkpoint to be continued
SAME = ("epochs", "batch_size", "lr", "optimizer", "weight_decay", "schedule", "warmup_ratio",
        "grad_clip", "accumulate", "precision", "seed")


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


def save(folder: Path, run: Any, epoch: int) -> None:
    """The state of ``run`` (a ``_Run``) after ``epoch`` epochs."""
    optimizer_tensors, optimizer_meta = _flatten_optimizer(run.optimizer.state_dict())
    tensors = {**optimizer_tensors, "rng.torch": torch.get_rng_state()}
    generator = run.batches.generator
    if generator is not None:
        tensors["rng.data_order"] = generator.get_state()
    tensors.update({f"loss.{k}": v.detach().contiguous().cpu()
                    for k, v in run.loss.state_dict().items()})
    settings = run.config.describe()
    meta = {"epoch": epoch, "optimizer": optimizer_meta,
            "scheduler": run.scheduler.state_dict(), "history": run.state.history,
            "global_step": run.state.global_step, "samples": run.state.samples,
            "settings": {k: settings[k] for k in SAME}}
    json.dumps(meta, allow_nan=True)  # fail before writing anything that cannot be stored
    (folder / META).unlink(missing_ok=True)  # the marker goes first, comes back last
    atomic.write_with(folder / TENSORS,
                      lambda p: safetensors.torch.save_file(tensors, str(p)))
    atomic.write_json(folder / META, meta)


def load(folder: Path, run: Any) -> int:
    """Put the checkpoint in ``folder`` into ``run``; the number of epochs it had finished
    (0 when there is none to continue)."""
    try:
        meta = json.loads((folder / META).read_text())
        last = json.loads((folder / "last.json").read_text())
    except (OSError, json.JSONDecodeError):
        return 0
    if last.get("epoch") != meta["epoch"]:
        return 0  # killed between the two writes: the weights belong to another epoch
    settings = run.config.describe()
    changed = {k: (v, settings[k]) for k, v in meta["settings"].items() if settings[k] != v}
    if changed:
        name, (was, now) = next(iter(changed.items()))
        raise ValueError(f"the checkpoint in {folder} comes from a run with other settings "
                         f"({name} was {was!r}, now {now!r}); remove it to start over")
    device = run.device
    tensors = safetensors.torch.load_file(str(folder / TENSORS))
    run.model.load_state_dict(safetensors.torch.load_file(str(folder / "last.safetensors"),
                                                          str(device)))
    loss_state = {k[len("loss."):]: v.to(device) for k, v in tensors.items()
                  if k.startswith("loss.")}
    if loss_state:
        run.loss.load_state_dict(loss_state)
    run.optimizer.load_state_dict(_unflatten_optimizer(tensors, meta["optimizer"]))
    run.scheduler.load_state_dict(meta["scheduler"])
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.data_order" in tensors and run.batches.generator is not None:
        run.batches.generator.set_state(tensors["rng.data_order"])
    run.state.history[:] = meta["history"]
    run.state.global_step, run.state.samples = meta["global_step"], meta["samples"]
    return int(meta["epoch"])
