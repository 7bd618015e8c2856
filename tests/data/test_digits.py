"""load_digits: a fixed stratified split of scikit-learn's 1,797 digits."""

from __future__ import annotations

import pytest
import torch

from distill.data import load_dataset, load_digits

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def splits():
    return load_digits("train"), load_digits("test")


def _rows(dataset) -> set[bytes]:
    return {row.numpy().tobytes() for row in dataset.inputs.reshape(len(dataset), -1)}


def test_sizes_add_up_to_the_whole_dataset(splits):
    train, test = splits
    assert len(train) + len(test) == 1797
    # 20% of each class goes to test
    assert 0.18 * 1797 < len(test) < 0.22 * 1797


def test_shapes_dtypes_and_scaling(splits):
    for ds in splits:
        assert ds.inputs.shape[1:] == (1, 8, 8)
        assert ds.inputs.dtype == torch.float32 and ds.labels.dtype == torch.int64
        assert ds.inputs.min() >= 0.0 and ds.inputs.max() <= 1.0
        assert ds.inputs.max() == 1.0
        assert ds.info.input_shape == (1, 8, 8) and ds.info.num_classes == 10
    assert splits[0].info.name == "digits/train" and splits[1].info.name == "digits/test"


def test_train_and_test_are_disjoint(splits):
    train, test = splits
    train_rows, test_rows = _rows(train), _rows(test)
    assert len(train_rows) == len(train) and len(test_rows) == len(test)  # all rows distinct
    assert not train_rows & test_rows


def test_split_matches_sklearn_labels(splits):
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    by_row = {
        (torch.tensor(img, dtype=torch.float32) / 16.0).numpy().tobytes(): int(t)
        for img, t in zip(bunch.images, bunch.target, strict=True)
    }
    for ds in splits:
        for x, y in zip(ds.inputs, ds.labels, strict=True):
            assert by_row[x[0].numpy().tobytes()] == int(y)


def test_split_is_stratified(splits):
    train, test = splits
    train_counts = torch.bincount(train.labels, minlength=10)
    test_counts = torch.bincount(test.labels, minlength=10)
    assert (test_counts > 0).all() and (train_counts > 0).all()
    share = test_counts.float() / (train_counts + test_counts).float()
    assert ((share - 0.2).abs() < 0.01).all()


def test_split_is_deterministic_and_seeded(splits):
    train, test = splits
    again = load_digits("test")
    assert torch.equal(again.inputs, test.inputs) and torch.equal(again.labels, test.labels)
    other = load_digits("test", seed=1)
    assert len(other) == len(test)
    assert _rows(other) != _rows(test)
    assert len(load_digits("train", seed=1)) + len(other) == 1797


def test_bad_split():
    with pytest.raises(ValueError, match="split"):
        load_digits("validation")


def test_load_dataset_by_name(splits):
    got = load_dataset("digits", split="test")
    assert torch.equal(got.inputs, splits[1].inputs)
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("imagenet")
