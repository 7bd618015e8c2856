"""numpy: .npz and .npy pairs, shapes, labels, and the files it refuses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distill.data import NO_LABEL, check_data, guess_format, load_data
from distill.data.formats import DataError


def _arrays(n=20, shape=(4,), seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, *shape)).astype(np.float64), np.arange(n) % 2


def test_npz_tabular_split_and_unlabeled(tmp_path):
    x, y = _arrays()
    np.savez(tmp_path / "d.npz", x=x, y=y)
    np.savez(tmp_path / "u.npz", inputs=x[:5])
    assert guess_format(tmp_path / "d.npz") == "numpy"
    data = load_data("numpy", path=tmp_path / "d.npz", test_fraction=0.25,
                     unlabeled=tmp_path / "u.npz")
    assert data.class_names == ("0", "1") and data.preprocessing is None
    assert data.train.inputs.dtype == torch.float32 and data.train.info.input_shape == (4,)
    assert len(data.train) == 14 and data.test.labels.bincount().tolist() == [3, 3]  # 2.5 → 3
    assert (data.unlabeled.labels == NO_LABEL).all() and len(data.unlabeled) == 5
    # the split keeps each sample's own label
    for inputs, label in zip(data.test.inputs, data.test.labels, strict=True):
        row = int(np.abs(x - inputs.numpy()).sum(1).argmin())
        assert y[row] == int(label)


def test_npy_pair_with_string_labels_and_images(tmp_path):
    x, _ = _arrays(6, shape=(5, 5))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.array(["cat", "dog", "cat", "dog", "cat", "dog"]))
    report = check_data("numpy", path=tmp_path / "x.npy", labels=tmp_path / "y.npy",
                        test=tmp_path / "x.npy", test_labels=tmp_path / "y.npy")
    assert report.input_kind == "image" and report.input_shape == (1, 5, 5)
    assert report.class_names == ("cat", "dog") and report.counts == {"train": 6, "test": 6}
    data = load_data("numpy", path=tmp_path / "x.npy", labels=tmp_path / "y.npy",
                     test=tmp_path / "x.npy", test_labels=tmp_path / "y.npy")
    assert data.train.inputs.shape == (6, 1, 5, 5) and data.train.labels.tolist() == [0, 1] * 3


def test_object_arrays_are_refused(tmp_path):
    np.savez(tmp_path / "o.npz", x=np.array([{"a": 1}, None], dtype=object), y=np.array([0, 1]))
    with pytest.raises(DataError, match=r"array 'x'.*Python objects"):
        check_data("numpy", path=tmp_path / "o.npz", test_fraction=0.5)
    np.save(tmp_path / "o.npy", np.array([[1], ["a"]], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="Python objects"):
        check_data("numpy", path=tmp_path / "o.npy", labels=tmp_path / "o.npy",
                   test_fraction=0.5)


def test_unknown_keys_are_listed(tmp_path):
    np.savez(tmp_path / "k.npz", features=np.zeros((2, 2)), target=np.zeros(2))
    with pytest.raises(DataError, match=r"has arrays \['features', 'target'\]; expected 'x'"):
        check_data("numpy", path=tmp_path / "k.npz", test_fraction=0.5)


def test_length_mismatch_and_bad_labels(tmp_path):
    np.savez(tmp_path / "m.npz", x=np.zeros((3, 2)), y=np.zeros(2, dtype=int))
    with pytest.raises(DataError, match="3 samples but 2 labels"):
        check_data("numpy", path=tmp_path / "m.npz", test_fraction=0.5)
    np.savez(tmp_path / "f.npz", x=np.zeros((4, 2)), y=np.array([0.0, 0.5, 1.0, 1.0]))
    with pytest.raises(DataError, match="label 0.5 in sample 1 is not a whole number"):
        check_data("numpy", path=tmp_path / "f.npz", test_fraction=0.5)


def test_test_labels_train_never_had(tmp_path):
    np.savez(tmp_path / "a.npz", x=np.zeros((4, 2)), y=np.array([0, 1, 0, 1]))
    np.savez(tmp_path / "b.npz", x=np.zeros((2, 2)), y=np.array([1, 3]))
    with pytest.raises(DataError, match="label 3 in sample 1 never occurs in the training"):
        check_data("numpy", path=tmp_path / "a.npz", test=tmp_path / "b.npz")


def test_non_finite_inputs_are_named(tmp_path):
    x, y = _arrays(4)
    x[2, 1] = np.nan
    np.savez(tmp_path / "n.npz", x=x, y=y)
    with pytest.raises(DataError, match="nan at sample 2"):
        load_data("numpy", path=tmp_path / "n.npz", test=tmp_path / "n.npz")


def test_id_like_integer_labels_are_refused(tmp_path):
    np.savez(tmp_path / "i.npz", x=np.zeros((4, 2)), y=np.array([10_000, 20_000, 10_000, 5]))
    with pytest.raises(DataError, match="reach 20000 while only 3 distinct values occur"):
        check_data("numpy", path=tmp_path / "i.npz", test_fraction=0.5)
