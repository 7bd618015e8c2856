"""Model and data that do not fit are said so in plain words at the first step."""

from __future__ import annotations

import pytest
import torch

import distill
from distill.batches import Batches
from distill.data import ArrayDataset, DatasetInfo
from distill.losses import TokenKDLoss


def _images(labels: list[int], shape=(1, 8, 8)) -> ArrayDataset:
    x = torch.randn(len(labels), *shape, generator=torch.Generator().manual_seed(0))
    return ArrayDataset(x, torch.tensor(labels), DatasetInfo("toy", shape, 13))


def test_a_label_beyond_the_students_classes_is_named_before_its_batch_comes():
    data = _images([0, 1] * 31 + [12, 1])
    student = distill.build_mlp((1, 8, 8), 10, hidden=(4,))
    with pytest.raises(ValueError, match=r"label 12, but the model predicts 10 classes \(0..9\)"):
        distill.train_model(student, data, batch_size=2, seed=3, progress=False)
    first = next(iter(Batches(data, 2, shuffle=True, seed=3)))
    assert int(first.labels.max()) < 12  # the first batch alone would not have shown it


def test_inputs_of_the_wrong_size_are_named_with_their_shape():
    data = _images([0, 1] * 8, shape=(1, 6, 6))
    student = distill.build_mlp((1, 8, 8), 2, hidden=(4,))
    with pytest.raises(ValueError, match=r"inputs of shape \(16, 1, 6, 6\).*input size"):
        distill.train_model(student, data, progress=False)


def test_float_labels_are_refused_with_a_hint():
    data = torch.utils.data.TensorDataset(torch.randn(8, 4), torch.rand(8))
    with pytest.raises(ValueError, match="integer class indices"):
        distill.train_model(distill.build_mlp((4,), 2, hidden=(4,)), data, progress=False)


def test_divergences_are_known_by_their_usual_names():
    assert TokenKDLoss("forward").divergence == "forward_kl"
    assert TokenKDLoss("Reverse-KL").divergence == "reverse_kl"
    assert TokenKDLoss("js").divergence == "jsd"
    with pytest.raises(ValueError, match="also accepted: .*forward"):
        TokenKDLoss("fwd")
