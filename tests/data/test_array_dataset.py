"""ArrayDataset: subsets, labeled views and scarce-label transfer sets."""

from __future__ import annotations

import pytest
import torch

from distill.data import NO_LABEL, ArrayDataset, DatasetInfo, load_digits


@pytest.fixture(scope="module")
def train():
    return load_digits("train")


def _toy(labels, name="toy"):
    labels = torch.as_tensor(labels)
    inputs = torch.arange(len(labels), dtype=torch.float32)[:, None]
    return ArrayDataset(inputs, labels, DatasetInfo(name, (1,), int(labels.max()) + 1))


def test_length_mismatch_is_refused():
    with pytest.raises(ValueError, match="3 inputs but 2 labels"):
        ArrayDataset(torch.zeros(3, 1), torch.zeros(2), DatasetInfo("x", (1,), 2))


@pytest.mark.parametrize("n", [1, 10, 25, 97, 500])
def test_scarce_labels_keeps_exactly_n_balanced(train, n):
    scarce = train.with_scarce_labels(n)
    labeled = scarce.labels != NO_LABEL
    assert int(labeled.sum()) == n
    # inputs untouched, kept labels are the true ones, the rest are -100
    assert torch.equal(scarce.inputs, train.inputs)
    assert torch.equal(scarce.labels[labeled], train.labels[labeled])
    assert set(scarce.labels[~labeled].tolist()) <= {NO_LABEL}
    counts = torch.bincount(scarce.labels[labeled], minlength=10)
    assert int(counts.max() - counts.min()) <= 1
    assert f"({n} labeled)" in scarce.info.name
    assert scarce.info.num_classes == train.info.num_classes


def test_scarce_labels_labeled_view(train):
    scarce = train.with_scarce_labels(30)
    labeled = scarce.labeled()
    assert len(labeled) == 30
    assert (labeled.labels != NO_LABEL).all()
    mask = scarce.labels != NO_LABEL
    assert torch.equal(labeled.inputs, train.inputs[mask])
    assert torch.equal(labeled.labels, train.labels[mask])
    assert torch.equal(torch.bincount(labeled.labels, minlength=10), torch.full((10,), 3))
    assert "labeled" in labeled.info.name


def test_scarce_labels_is_seeded(train):
    a = train.with_scarce_labels(40, seed=3)
    b = train.with_scarce_labels(40, seed=3)
    c = train.with_scarce_labels(40, seed=4)
    assert torch.equal(a.labels, b.labels)
    assert not torch.equal(a.labels, c.labels)


@pytest.mark.parametrize("n", [-1, 10_000])
def test_scarce_labels_out_of_range(train, n):
    with pytest.raises(ValueError, match="num_labeled"):
        train.with_scarce_labels(n)


def test_zero_labels_is_a_fully_unlabeled_transfer_set(train):
    assert bool((train.with_scarce_labels(0).labels == NO_LABEL).all())


def test_scarce_labels_keeps_n_when_classes_are_unequal(train):
    assert int((train.with_scarce_labels(len(train)).labels != NO_LABEL).sum()) == len(train)
    toy = _toy([0] * 8 + [1] * 2)
    assert int((toy.with_scarce_labels(6).labels != NO_LABEL).sum()) == 6


def test_labeled_drops_no_label_rows():
    ds = _toy([0, NO_LABEL, 1, NO_LABEL, 1])
    labeled = ds.labeled()
    assert labeled.labels.tolist() == [0, 1, 1]
    assert labeled.inputs[:, 0].tolist() == [0.0, 2.0, 4.0]
    assert labeled.info.name == "toy (labeled)"


def test_subset_keeps_info_unless_renamed():
    ds = _toy([0, 1, 2, 0])
    sub = ds.subset(torch.tensor([3, 1]))
    assert sub.labels.tolist() == [0, 1] and sub.inputs[:, 0].tolist() == [3.0, 1.0]
    assert sub.info is ds.info
    renamed = ds.subset(torch.tensor([0]), name="first")
    assert renamed.info.name == "first" and renamed.info.num_classes == ds.info.num_classes
