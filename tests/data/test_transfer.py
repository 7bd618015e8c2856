"""Mixing labeled and unlabeled samples into one transfer set."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import Dataset, TensorDataset

import distill
from distill.data import NO_LABEL, ArrayDataset, TransferSet, load_digits, mix_labeled_unlabeled


def test_tensor_datasets_stay_on_the_fast_path():
    train = load_digits("train")
    labeled, pool = train.subset(torch.arange(100)), train.subset(torch.arange(100, 600))
    mixed = mix_labeled_unlabeled(labeled, TensorDataset(pool.inputs))
    assert isinstance(mixed, ArrayDataset) and len(mixed) == 600
    assert torch.equal(mixed.labels[:100], labeled.labels)
    assert bool((mixed.labels[100:] == NO_LABEL).all())
    assert torch.equal(mixed.inputs[100:], pool.inputs)


class Plain(Dataset):
    def __init__(self, x, y=None):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i] if self.y is None else (self.x[i], self.y[i])


def test_generic_datasets_are_mixed_lazily():
    x, y = torch.randn(10, 3), torch.arange(10) % 2
    mixed = mix_labeled_unlabeled(Plain(x[:4], y[:4]), Plain(x[4:], y[4:]))  # labels ignored
    assert isinstance(mixed, TransferSet) and len(mixed) == 10
    assert mixed[2][1].item() == y[2].item()
    assert mixed[7][1].item() == NO_LABEL and torch.equal(mixed[7][0], x[7])
    assert mixed[-1][1].item() == NO_LABEL


def test_refusals():
    with pytest.raises(ValueError, match="per sample"):
        mix_labeled_unlabeled(TensorDataset(torch.zeros(2, 3), torch.zeros(2)),
                              TensorDataset(torch.zeros(2, 4)))
    with pytest.raises(ValueError, match="has no label"):
        TransferSet(Plain(torch.zeros(2, 3)), Plain(torch.zeros(2, 3)))[0]


def test_distilling_on_labeled_plus_unlabeled(tmp_path):
    train, test = load_digits("train"), load_digits("test")
    torch.manual_seed(0)
    teacher = distill.build_mlp((1, 8, 8), 10, hidden=(32,))
    distill.train_model(teacher, train, epochs=4, lr=1e-2, progress=False)
    mixed = mix_labeled_unlabeled(train.subset(torch.arange(50)),
                                  TensorDataset(train.inputs[50:]))
    torch.manual_seed(1)
    student = distill.build_mlp((1, 8, 8), 10, hidden=(16,))
    result = distill.distill(teacher, student, mixed, eval=test, epochs=4, lr=1e-2,
                             progress=False)
    torch.manual_seed(1)
    alone = distill.build_mlp((1, 8, 8), 10, hidden=(16,))
    few = distill.train_model(alone, train.subset(torch.arange(50)), eval=test, epochs=4,
                              lr=1e-2, progress=False)
    # the 1,388 unlabeled images, labeled by the teacher, are worth more than 50 labels alone
    assert result.metrics["accuracy"] > few.metrics["accuracy"] + 0.05
