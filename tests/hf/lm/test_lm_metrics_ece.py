"""The language-model metrics' calibration error is the classifier one, over next tokens."""

from __future__ import annotations

import torch

from distill.data import ArrayDataset, DatasetInfo
from distill.evaluate import expected_calibration_error
from distill.lm import lm_metrics


class _Logits(torch.nn.Module):
    """A stand-in language model: fixed logits per position, whatever the input."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.logits = logits

    def forward(self, input_ids):
        return self.logits[: input_ids.shape[0]]


def test_ece_over_next_tokens_matches_the_classifier_formula():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 10, 7, generator=g) * 3
    labels = torch.randint(0, 7, (6, 10), generator=g)
    labels[0, :4] = -100  # positions without a label do not count
    data = ArrayDataset(torch.zeros(6, 10, dtype=torch.long), labels, DatasetInfo("t", (10,), 7))
    scores = lm_metrics(_Logits(logits), data, batch_size=6, chunk_size=3)
    keep = labels != -100
    expected = expected_calibration_error(logits[keep], labels[keep])
    assert abs(scores["ece"] - expected) < 1e-6
