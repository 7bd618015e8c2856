"""Turning whatever the user's data yields into (inputs, labels), and feeding models with it.

Accepted samples/batches: ``(x, y)``, ``x`` alone, or a dict whose label key is one of
``labels``, ``label``, ``y`` or ``targets`` (the rest are the model's inputs; several inputs are
passed as keyword arguments, as Hugging Face models expect).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    RandomSampler,
    SequentialSampler,
    TensorDataset,
)

LABEL_KEYS = ("labels", "label", "y", "targets")
Inputs = Tensor | Mapping[str, Any]


@dataclass
class Batch:
    inputs: Inputs
    labels: Tensor | None
    indices: Tensor | None = None

    def __len__(self) -> int:
        return batch_size_of(self.inputs)


def batch_size_of(inputs: Inputs) -> int:
    if isinstance(inputs, Tensor):
        return int(inputs.shape[0])
    for value in inputs.values():
        if isinstance(value, Tensor):
            return int(value.shape[0])
    raise ValueError("cannot tell the batch size: the batch holds no tensors")


def unpack(batch: Any, indices: Tensor | None = None) -> Batch:
    if isinstance(batch, Tensor):
        return Batch(batch, None, indices)
    if isinstance(batch, Mapping):
        label_key = next((k for k in LABEL_KEYS if k in batch), None)
        inputs = {k: v for k, v in batch.items() if k != label_key}
        if not inputs:
            raise ValueError(f"the batch dict holds only labels (keys: {sorted(batch)})")
        labels = batch[label_key] if label_key is not None else None
        if len(inputs) == 1:
            (only,) = inputs.values()
            if isinstance(only, Tensor):
                return Batch(only, labels, indices)
        return Batch(inputs, labels, indices)
    if isinstance(batch, list | tuple):
        if len(batch) == 1:
            return Batch(batch[0], None, indices)
        if len(batch) == 2:
            return Batch(batch[0], batch[1], indices)
        raise ValueError(
            f"a batch has {len(batch)} items; expected (inputs, labels), inputs alone, or a dict"
        )
    raise TypeError(f"cannot read a batch of type {type(batch).__name__}")


def to_device(value: Any, device: torch.device | str) -> Any:
    if isinstance(value, Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, Mapping):
        return {k: to_device(v, device) for k, v in value.items()}
    return value


def logits_of(output: Any) -> Tensor:
    """The logits in a model's output: a tensor, ``.logits``/``["logits"]``, or a tuple's first."""
    if isinstance(output, Tensor):
        return output
    logits = getattr(output, "logits", None)
    if isinstance(logits, Tensor):
        return logits
    if isinstance(output, Mapping) and isinstance(output.get("logits"), Tensor):
        return output["logits"]
    if isinstance(output, tuple | list) and output and isinstance(output[0], Tensor):
        return output[0]
    raise TypeError(f"cannot find logits in a model output of type {type(output).__name__}")


def forward(model: nn.Module, inputs: Inputs) -> Tensor:
    if isinstance(inputs, Mapping):
        return logits_of(model(**inputs))
    return logits_of(model(inputs))


class _IndexedTensors(Dataset):
    """Fetch whole batches of a TensorDataset in one indexing call (no per-sample collate)."""

    def __init__(self, dataset: TensorDataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: list[int]):
        index_tensor = torch.as_tensor(index, dtype=torch.long)
        return index_tensor, self.dataset[index_tensor]


class _Share:
    """Every ``world``-th index of each batch, from ``rank``: one process's part of it."""

    def __init__(self, batches: BatchSampler, rank: int, world: int):
        self.batches, self.rank, self.world = batches, rank, world

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[int]]:
        for indices in self.batches:
            indices = list(indices)
            # a batch smaller than the world goes whole to every process: the average of
            # identical gradients is its own, as in one process
            yield indices[self.rank::self.world] if len(indices) >= self.world else indices


class _Indexed(Dataset):
    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int):
        return index, self.dataset[index]


class _CollateWithIndices:
    """Default-collate the indices; let the dataset's own ``collate`` build the batch."""

    def __init__(self, collate: Any):
        self.collate = collate

    def __call__(self, items: list[tuple[int, Any]]):
        indices = torch.as_tensor([i for i, _ in items], dtype=torch.long)
        return indices, self.collate([sample for _, sample in items])


class Batches:
    """An epoch-able stream of :class:`Batch` over a dataset or a user's DataLoader."""

    def __init__(
        self,
        data: Dataset | DataLoader,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int = 0,
        num_workers: int = 0,
        shard: tuple[int, int] | None = None,
    ):
        """``shard=(rank, world)``: this process's share of every batch of ``batch_size``
        (torch.distributed training: the batches, and their order, are the same in every
        process; each takes every ``world``-th sample of each)."""
        self.user_loader = isinstance(data, DataLoader)
        self.generator: torch.Generator | None = None  # the data order's, to resume it
        if self.user_loader:
            self.loader = data
        else:
            if not hasattr(data, "__getitem__") or not hasattr(data, "__len__"):
                raise TypeError(
                    f"training data must be a map-style Dataset or a DataLoader, "
                    f"got {type(data).__name__}"
                )
            if len(data) == 0:
                raise ValueError("the dataset is empty: there is nothing to train or evaluate on")
            generator = torch.Generator().manual_seed(seed)
            self.generator = generator if shuffle else None
            # an in-order pass (evaluation, calibration) draws its loader seed from a private
            # generator: it must not move the global random state training depends on (a
            # resumed run evaluates the teacher once more than an uninterrupted one)
            private = {} if shuffle else {"generator": torch.Generator().manual_seed(seed)}
            sampler = (
                RandomSampler(data, generator=generator) if shuffle else SequentialSampler(data)
            )
            batches: Any = BatchSampler(sampler, batch_size, drop_last=False)
            if shard is not None:
                batches = _Share(batches, *shard)
            if isinstance(data, TensorDataset):
                self.loader = DataLoader(
                    _IndexedTensors(data),
                    sampler=batches,
                    batch_size=None,
                    num_workers=num_workers,
                    **private,
                )
            elif shard is not None:
                collate = getattr(data, "collate", None)
                self.loader = DataLoader(
                    _Indexed(data), batch_sampler=batches, num_workers=num_workers,
                    collate_fn=_CollateWithIndices(collate) if callable(collate) else None,
                    **private,
                )
            else:
                # A dataset may shape its own batches (TokenizedText trims shared padding).
                collate = getattr(data, "collate", None)
                self.loader = DataLoader(
                    _Indexed(data),
                    batch_size=batch_size,
                    sampler=sampler,
                    num_workers=num_workers,
                    collate_fn=_CollateWithIndices(collate) if callable(collate) else None,
                    **private,
                )

    def __len__(self) -> int:
        try:
            return len(self.loader)
        except TypeError as err:
            raise TypeError(
                "the DataLoader has no length (an IterableDataset?); distill needs map-style data "
                "to plan its learning-rate schedule"
            ) from err

    def __iter__(self) -> Iterator[Batch]:
        for item in self.loader:
            if self.user_loader:
                yield unpack(item)
            else:
                indices, batch = item
                yield unpack(batch, torch.as_tensor(indices))


def first_batches(data: Dataset | DataLoader, count: int, batch_size: int,
                  device: torch.device | str | None = None) -> Iterator[Batch]:
    """The first ``count`` batches of ``data`` in order, on ``device``: the calibration pass
    that pruning importances and int8 quantizers share."""
    for n, batch in enumerate(Batches(data, batch_size, shuffle=False)):
        if n == count:
            return
        if device is not None:
            labels = None if batch.labels is None else batch.labels.to(device)
            batch = Batch(to_device(batch.inputs, device), labels, batch.indices)
        yield batch
