"""Parameter counts and bytes on disk."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from distill import build_cnn, build_mlp
from distill.evaluate import count_parameters, size_on_disk


class TiedLM(nn.Module):
    def __init__(self, vocab=50, dim=8, tie=True):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        if tie:
            self.head.weight = self.embed.weight

    def forward(self, ids):
        return self.head(self.embed(ids))


def test_counts_every_parameter():
    model = build_mlp((1, 8, 8), 10, hidden=(32,))
    assert count_parameters(model) == 64 * 32 + 32 + 32 * 10 + 10


def test_buffers_are_not_parameters():
    model = build_cnn((1, 8, 8), 10, channels=(4,))
    # conv 1*4*3*3 (no bias), BatchNorm weight+bias 4+4, linear 4*10+10
    assert count_parameters(model) == 36 + 8 + 50


def test_tied_weights_count_once():
    tied, untied = TiedLM(tie=True), TiedLM(tie=False)
    assert count_parameters(untied) == 2 * 50 * 8
    assert count_parameters(tied) == 50 * 8


def test_size_grows_with_parameters_at_about_four_bytes_each():
    sizes = []
    for hidden in (16, 64, 256):
        model = build_mlp((1, 8, 8), 10, hidden=(hidden,))
        size, params = size_on_disk(model), count_parameters(model)
        assert 4 * params < size < 4 * params + 1024  # fp32 data plus a small JSON header
        sizes.append(size)
    assert sizes[0] < sizes[1] < sizes[2]


def test_half_precision_halves_the_size():
    model = build_mlp((1, 8, 8), 10, hidden=(256,))
    params = count_parameters(model)
    assert size_on_disk(model.half()) == pytest.approx(2 * params, rel=0.05)


def test_tied_weights_are_stored_once():
    tied_size, untied_size = size_on_disk(TiedLM(tie=True)), size_on_disk(TiedLM(tie=False))
    assert tied_size < untied_size
    assert tied_size == pytest.approx(4 * 50 * 8, abs=512)


def test_size_on_disk_leaves_model_untouched():
    model = build_mlp((4,), 3, hidden=(5,))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    size_on_disk(model)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
