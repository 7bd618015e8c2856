"""The task is asked, never guessed: named by the caller or declared by the data."""

from __future__ import annotations

import pytest
import torch

import distill
from distill.data import ArrayDataset, DatasetInfo
from distill.hf.text import TokenizedText
from distill.losses import KDLoss, TokenKDLoss
from distill.registry import UnknownNameError
from distill.tasks import TASKS, resolve_task


class TinyLM(torch.nn.Module):
    def __init__(self, vocab: int = 16):
        super().__init__()
        self.embed, self.head = torch.nn.Embedding(vocab, 8), torch.nn.Linear(8, vocab)

    def forward(self, input_ids, attention_mask=None):
        return self.head(self.embed(input_ids))


def _lm_data(task: str | None):
    ids = torch.randint(0, 16, (8, 7), generator=torch.Generator().manual_seed(0))
    return TokenizedText({"input_ids": ids[:, :-1]}, ids[:, 1:],
                         DatasetInfo("toy", (6,), 16, task=task))


def test_tasks_are_registered_with_their_headline_metric():
    assert TASKS.names() == ["classification", "causal-lm", "sentence-embedding"]
    assert resolve_task("lm").headline == "perplexity"
    assert not resolve_task("causal-lm").higher_is_better
    with pytest.raises(UnknownNameError, match="did you mean 'classification'"):
        resolve_task("clasification")


def test_the_data_declares_its_task_and_the_caller_may_name_it():
    assert resolve_task(None, _lm_data("causal-lm")).name == "causal-lm"
    assert resolve_task(None, _lm_data(None)).name == "classification"  # the default
    assert resolve_task("causal-lm", _lm_data(None)).name == "causal-lm"
    assert isinstance(resolve_task("causal-lm").default_loss(), TokenKDLoss)
    assert isinstance(resolve_task("classification").default_loss(), KDLoss)


def test_a_language_model_is_scored_by_perplexity_when_the_task_says_so():
    data = _lm_data(None)
    with pytest.raises(ValueError, match="pass task='causal-lm'"):  # not guessed from shapes
        distill.distill(TinyLM(), TinyLM(), data, eval=data, progress=False)
    result = distill.distill(TinyLM(), TinyLM(), data, eval=data, task="causal-lm",
                             progress=False)
    assert "perplexity" in result.metrics and "kl_to_teacher" in result.metrics
    declared = _lm_data("causal-lm")  # distill.lm's datasets declare their task themselves
    result = distill.distill(TinyLM(), TinyLM(), declared, eval=declared, progress=False)
    assert "perplexity" in result.metrics


def test_subsets_keep_the_declared_task():
    data = ArrayDataset(torch.zeros(4, 2), torch.tensor([0, 1, 0, 1]),
                        DatasetInfo("x", (2,), 2, task="classification"))
    assert data.subset(torch.tensor([0, 1]), "part").info.task == "classification"
    assert data.with_scarce_labels(2).info.task == "classification"
    assert _lm_data("causal-lm").subset([0], "one").info.task == "causal-lm"
