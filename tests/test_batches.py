"""Reading the user's batches (unpack, logits_of) and streaming datasets (Batches)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from distill.batches import (
    Batch,
    Batches,
    batch_size_of,
    first_batches,
    forward,
    logits_of,
    to_device,
    unpack,
)
from distill.data import ArrayDataset, DatasetInfo

X = torch.arange(12, dtype=torch.float32).reshape(4, 3)
Y = torch.tensor([0, 1, 0, 1])

# ---------------------------------------------------------------- unpack


def test_unpack_tensor():
    batch = unpack(X)
    assert batch.inputs is X and batch.labels is None and batch.indices is None
    assert len(batch) == 4


@pytest.mark.parametrize("container", [tuple, list])
def test_unpack_inputs_alone(container):
    batch = unpack(container([X]))
    assert batch.inputs is X and batch.labels is None


@pytest.mark.parametrize("container", [tuple, list])
def test_unpack_inputs_and_labels(container):
    indices = torch.arange(4)
    batch = unpack(container([X, Y]), indices)
    assert batch.inputs is X and batch.labels is Y and batch.indices is indices


@pytest.mark.parametrize("key", ["labels", "label", "y", "targets"])
def test_unpack_dict_with_label_key(key):
    batch = unpack({"pixels": X, key: Y})
    assert batch.inputs is X and batch.labels is Y


def test_unpack_dict_without_labels():
    batch = unpack({"pixels": X})
    assert batch.inputs is X and batch.labels is None


def test_unpack_dict_with_several_inputs_keeps_a_dict():
    ids, mask = torch.ones(4, 5, dtype=torch.long), torch.zeros(4, 5)
    batch = unpack({"input_ids": ids, "attention_mask": mask, "labels": Y})
    assert isinstance(batch.inputs, dict)
    assert set(batch.inputs) == {"input_ids", "attention_mask"}
    assert batch.inputs["input_ids"] is ids and batch.labels is Y
    assert len(batch) == 4


def test_unpack_dict_with_only_labels():
    with pytest.raises(ValueError, match="only labels"):
        unpack({"labels": Y})


@pytest.mark.parametrize("items", [3, 4])
def test_unpack_too_many_items(items):
    with pytest.raises(ValueError, match=f"{items} items"):
        unpack((X,) * items)


def test_unpack_unknown_type():
    with pytest.raises(TypeError, match="str"):
        unpack("not a batch")


def test_batch_size_of():
    assert batch_size_of(X) == 4
    assert batch_size_of({"meta": "x", "ids": torch.zeros(7, 2)}) == 7
    with pytest.raises(ValueError, match="no tensors"):
        batch_size_of({"meta": "x"})


def test_to_device_handles_tensors_dicts_and_others():
    out = to_device({"a": X, "b": 3}, "cpu")
    assert torch.equal(out["a"], X) and out["b"] == 3
    assert to_device("x", "cpu") == "x"


# ---------------------------------------------------------------- logits_of / forward


def test_logits_of_tensor():
    assert logits_of(X) is X


def test_logits_of_object_with_logits_attribute():
    assert logits_of(SimpleNamespace(logits=X, loss=None)) is X


def test_logits_of_dict():
    assert logits_of({"loss": torch.tensor(1.0), "logits": X}) is X


@pytest.mark.parametrize("container", [tuple, list])
def test_logits_of_sequence_takes_the_first(container):
    assert logits_of(container([X, torch.zeros(2)])) is X


@pytest.mark.parametrize("output", [None, (), {"scores": X}, ("text", X), SimpleNamespace(a=1)])
def test_logits_of_unknown_output(output):
    with pytest.raises(TypeError, match="cannot find logits"):
        logits_of(output)


def test_forward_passes_dict_inputs_as_keywords():
    class TwoInputs(nn.Module):
        def forward(self, input_ids, attention_mask):
            return {"logits": input_ids.float() * attention_mask}

    ids, mask = torch.tensor([[1, 2]]), torch.tensor([[1.0, 0.0]])
    out = forward(TwoInputs(), {"input_ids": ids, "attention_mask": mask})
    assert out.tolist() == [[1.0, 0.0]]
    assert forward(nn.Identity(), X) is X


# ---------------------------------------------------------------- Batches


def _dataset(n=23):
    inputs = torch.arange(n, dtype=torch.float32)[:, None].repeat(1, 2)
    labels = torch.arange(n) % 3
    return ArrayDataset(inputs, labels, DatasetInfo("rows", (2,), 3))


def _epoch(batches):
    return [(b.indices.clone(), b.inputs.clone(), b.labels.clone()) for b in batches]


def test_batches_over_array_dataset_in_order():
    data = _dataset(23)
    batches = Batches(data, 5, shuffle=False)
    assert len(batches) == 5
    epoch = _epoch(batches)
    assert [len(i) for i, _, _ in epoch] == [5, 5, 5, 5, 3]
    assert torch.equal(torch.cat([i for i, _, _ in epoch]), torch.arange(23))
    for indices, inputs, labels in epoch:
        assert torch.equal(inputs, data.inputs[indices])
        assert torch.equal(labels, data.labels[indices])
        assert indices.dtype == torch.long


def test_shuffled_batches_match_their_rows_and_cover_every_index_once():
    data = _dataset(23)
    batches = Batches(data, 4, shuffle=True, seed=7)
    for _ in range(2):  # two epochs
        epoch = _epoch(batches)
        seen = torch.cat([i for i, _, _ in epoch])
        assert sorted(seen.tolist()) == list(range(23))
        assert not torch.equal(seen, torch.arange(23))  # actually shuffled
        for indices, inputs, labels in epoch:
            assert torch.equal(inputs, data.inputs[indices])
            assert torch.equal(labels, data.labels[indices])


def test_shuffle_is_deterministic_by_seed_and_changes_between_epochs():
    data = _dataset(40)

    def order(seed, epochs=2):
        batches = Batches(data, 8, shuffle=True, seed=seed)
        return [torch.cat([b.indices for b in batches]).tolist() for _ in range(epochs)]

    first = order(3)
    assert first == order(3)
    assert first != order(4)
    assert first[0] != first[1]


class ListDataset(Dataset):
    """A map-style dataset that is not a TensorDataset: samples are (x, y) pairs."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return torch.tensor([float(i), -float(i)]), i % 2


def test_batches_over_a_plain_dataset():
    data = ListDataset(11)
    batches = Batches(data, 4, shuffle=True, seed=0)
    seen = []
    for batch in batches:
        seen += batch.indices.tolist()
        assert torch.equal(batch.inputs[:, 0], batch.indices.float())
        assert torch.equal(batch.labels, batch.indices % 2)
    assert sorted(seen) == list(range(11))


def test_batches_over_dict_samples():
    class Dicts(Dataset):
        def __len__(self):
            return 6

        def __getitem__(self, i):
            return {"ids": torch.tensor([i, i]), "mask": torch.ones(2), "labels": i}

    batch = next(iter(Batches(Dicts(), 4, shuffle=False)))
    assert set(batch.inputs) == {"ids", "mask"}
    assert batch.labels.tolist() == [0, 1, 2, 3] == batch.indices.tolist()


def test_user_dataloader_batches_pass_through():
    loader = DataLoader(TensorDataset(X, Y), batch_size=3, shuffle=False)
    batches = Batches(loader, 999, shuffle=True)  # batch_size/shuffle belong to the loader
    assert len(batches) == 2
    out = list(batches)
    assert all(isinstance(b, Batch) and b.indices is None for b in out)
    assert torch.equal(torch.cat([b.inputs for b in out]), X)
    assert torch.equal(torch.cat([b.labels for b in out]), Y)


def test_user_dataloader_of_dicts():
    loader = DataLoader([{"x": X[i], "label": Y[i]} for i in range(4)], batch_size=4)
    (batch,) = list(Batches(loader, 1, shuffle=False))
    assert torch.equal(batch.inputs, X) and torch.equal(batch.labels, Y)


def test_empty_dataset_is_refused():
    with pytest.raises(ValueError, match="empty"):
        Batches(TensorDataset(torch.zeros(0, 3)), 4, shuffle=True)


def test_non_dataset_is_refused():
    with pytest.raises(TypeError, match="map-style"):
        Batches(iter([X]), 4, shuffle=False)


def test_length_of_an_iterable_loader_is_explained():
    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            yield from X

    batches = Batches(DataLoader(Stream(), batch_size=2), 2, shuffle=False)
    with pytest.raises(TypeError, match="IterableDataset"):
        len(batches)


def test_first_batches_stops_at_count_in_order_and_keeps_labels():
    data = TensorDataset(torch.arange(10.0).unsqueeze(1), torch.arange(10))
    batches = list(first_batches(data, 2, 3, device="cpu"))
    assert [b.inputs.squeeze(1).tolist() for b in batches] == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert batches[1].labels.tolist() == [3, 4, 5]
    assert len(list(first_batches(data, 50, 4))) == 3  # a short dataset ends the pass early
