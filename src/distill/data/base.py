"""In-memory datasets that know their input shape, classes and where they came from."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from torch import Tensor
from torch.utils.data import TensorDataset

NO_LABEL = -100


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    input_shape: tuple[int, ...]
    num_classes: int
    class_names: tuple[str, ...] = field(default=())
    task: str | None = None
    """What the data is for (``"causal-lm"`` for next-token labels); None: the caller says, and
    classification is the default (see ``distill.tasks``)."""


class ArrayDataset(TensorDataset):
    """A ``TensorDataset`` of ``(inputs, labels)`` carrying :class:`DatasetInfo`.

    Being a ``TensorDataset``, the engine can fetch whole batches by index in one call instead of
    one sample at a time. Labels equal to ``NO_LABEL`` (-100) mark unlabeled transfer samples.
    """

    def __init__(self, inputs: Tensor, labels: Tensor, info: DatasetInfo):
        if len(inputs) != len(labels):
            raise ValueError(f"{len(inputs)} inputs but {len(labels)} labels")
        super().__init__(inputs, labels)
        self.info = info

    @property
    def inputs(self) -> Tensor:
        return self.tensors[0]

    @property
    def labels(self) -> Tensor:
        return self.tensors[1]

    def subset(self, indices: Tensor, name: str | None = None) -> ArrayDataset:
        info = self.info if name is None else replace(self.info, name=name)
        return ArrayDataset(self.inputs[indices], self.labels[indices], info)

    def labeled(self) -> ArrayDataset:
        """Only the samples that carry a hard label."""
        keep = (self.labels != NO_LABEL).nonzero().flatten()
        return self.subset(keep, f"{self.info.name} (labeled)")

    def with_scarce_labels(self, num_labeled: int, seed: int = 0) -> ArrayDataset:
        """Keep ``num_labeled`` labels (balanced across classes), mark the rest unlabeled.

        ``num_labeled=0`` makes the whole set an unlabeled transfer set (teacher targets only).
        """
        labels = scarce_labels(self.labels, num_labeled, seed)
        info = replace(self.info, name=f"{self.info.name} ({num_labeled} labeled)")
        return ArrayDataset(self.inputs, labels, info)


def scarce_labels(labels: Tensor, num_labeled: int, seed: int = 0) -> Tensor:
    """``labels`` with all but ``num_labeled`` of them (balanced across classes, reproducibly)
    replaced by ``NO_LABEL``: what every dataset's ``with_scarce_labels`` keeps."""
    available = int((labels != NO_LABEL).sum())
    if not 0 <= num_labeled <= available:
        raise ValueError(
            f"num_labeled must be in [0, {available}] (the labeled samples), got {num_labeled}"
        )
    keep = balanced_indices(labels, num_labeled, seed)
    out = torch.full_like(labels, NO_LABEL)
    out[keep] = labels[keep]
    return out


def balanced_indices(labels: Tensor, count: int, seed: int) -> Tensor:
    """``count`` labeled indices spread as evenly across classes as possible, reproducibly.

    Classes take turns (round robin), so a class too small for its share leaves the rest of
    the budget to the others instead of silently returning fewer than ``count``.
    """
    generator = torch.Generator().manual_seed(seed)
    classes = labels[labels != NO_LABEL].unique()
    per_class = [(labels == c).nonzero().flatten() for c in classes]
    per_class = [idx[torch.randperm(len(idx), generator=generator)] for idx in per_class]
    rank = torch.cat([torch.arange(len(idx)) for idx in per_class])
    order = torch.cat(per_class)
    turn = torch.argsort(rank * len(per_class) + torch.cat(
        [torch.full((len(idx),), k) for k, idx in enumerate(per_class)]
    ))
    if count > len(order):
        raise ValueError(f"asked for {count} labeled samples but only {len(order)} carry labels")
    return order[turn[:count]].sort().values
