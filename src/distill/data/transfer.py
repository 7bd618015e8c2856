"""Transfer sets that mix labeled and unlabeled samples in one run.

Unlabeled samples carry the label -100 ("no label"): they learn from the teacher's soft
targets alone, while labeled ones also learn from their label. That is what makes a small
labeled set plus a large unlabeled pool useful.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset, TensorDataset

from distill.batches import unpack
from distill.data.base import NO_LABEL, ArrayDataset


class TransferSet(Dataset):
    """``labeled`` samples (with their labels) followed by ``unlabeled`` ones (label -100)."""

    def __init__(self, labeled: Dataset, unlabeled: Dataset):
        self.labeled, self.unlabeled = labeled, unlabeled
        self.num_labeled = len(labeled)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return self.num_labeled + len(self.unlabeled)  # type: ignore[arg-type]

    def __getitem__(self, index: int):
        if index < 0:
            index += len(self)
        if index < self.num_labeled:
            sample = unpack(self.labeled[index])
            if sample.labels is None:
                raise ValueError(f"labeled sample {index} has no label")
            return sample.inputs, torch.as_tensor(sample.labels)
        sample = unpack(self.unlabeled[index - self.num_labeled])
        return sample.inputs, torch.tensor(NO_LABEL)


def mix_labeled_unlabeled(labeled: Any, unlabeled: Any) -> Dataset:
    """One dataset of both, for :func:`distill.distill` (unlabeled samples: label -100).

    ``unlabeled`` may yield inputs alone or ``(inputs, labels)`` whose labels are ignored.
    Tensor datasets stay tensor datasets, on the engine's fast batching path.
    """
    if isinstance(labeled, TensorDataset) and isinstance(unlabeled, TensorDataset):
        if len(labeled.tensors) != 2:
            raise ValueError("the labeled TensorDataset must hold (inputs, labels)")
        x_l, y_l = labeled.tensors
        x_u = unlabeled.tensors[0]
        if x_l.shape[1:] != x_u.shape[1:]:
            raise ValueError(
                f"labeled inputs have shape {tuple(x_l.shape[1:])} per sample, unlabeled ones "
                f"{tuple(x_u.shape[1:])}"
            )
        no_labels = torch.full((len(x_u),), NO_LABEL, dtype=y_l.dtype)
        inputs, labels = torch.cat([x_l, x_u]), torch.cat([y_l, no_labels])
        if isinstance(labeled, ArrayDataset):
            return ArrayDataset(inputs, labels, labeled.info)
        return TensorDataset(inputs, labels)
    return TransferSet(labeled, unlabeled)
