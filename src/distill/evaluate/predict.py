"""Running a model (or a teacher signal) over a dataset and collecting logits and labels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from distill.batches import Batches, forward, to_device


@dataclass
class Predictions:
    logits: Tensor
    labels: Tensor | None


@torch.no_grad()
def predict(
    model: Any,
    data,
    batch_size: int = 512,
    device: str | torch.device = "cpu",
    progress: bool | None = False,
    description: str = "predict",
) -> Predictions:
    """Logits for every sample, in dataset order, on the CPU.

    ``progress``: True shows a bar, None shows one when attached to a terminal.
    """
    from tqdm.auto import tqdm

    batches = Batches(data, batch_size, shuffle=False)
    bar = tqdm(total=len(batches), desc=description, leave=False,
               disable=False if progress else None if progress is None else True)
    is_module = isinstance(model, nn.Module)
    was_training = is_module and model.training
    if is_module:
        model.eval()
    logits: list[Tensor] = []
    labels: list[Tensor] = []
    try:
        for batch in batches:
            inputs = to_device(batch.inputs, device)
            out = forward(model, inputs) if is_module else model.logits(inputs, batch.indices)
            logits.append(out.float().cpu())
            if batch.labels is not None:
                labels.append(torch.as_tensor(batch.labels).cpu())
            bar.update(1)
    finally:
        bar.close()
        if was_training:
            model.train()
    if labels and len(labels) != len(logits):
        raise ValueError("some batches carry labels and others do not")
    return Predictions(torch.cat(logits), torch.cat(labels) if labels else None)
