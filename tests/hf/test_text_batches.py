"""Batches of tokenized text drop the padding columns no sample in them uses."""

from __future__ import annotations

import torch

from distill.batches import Batches, forward
from distill.hf import TokenizedText

TEXTS = ["good", "the film was very good", "bad plot", "awful"]


def batches(data, size=2):
    return list(Batches(data, size, shuffle=False))


def test_each_batch_is_cut_to_its_longest_text(tokenizer):
    data = TokenizedText.from_texts(TEXTS, tokenizer, [1, 1, 0, 0], max_length=12)
    first, second = batches(data)
    assert first.inputs["input_ids"].shape == (2, 5)  # "the film was very good"
    assert second.inputs["input_ids"].shape == (2, 2)  # "bad plot"
    assert first.labels.tolist() == [1, 1]
    kept = TokenizedText.from_texts(TEXTS, tokenizer, max_length=12, trim_padding=False)
    assert all(b.inputs["input_ids"].shape[1] == 12 for b in batches(kept))
    assert batches(data.subset([0, 1]))[0].inputs["input_ids"].shape[1] == 5


def test_left_padding_is_cut_from_the_left_and_per_token_labels_follow(tokenizer):
    tokenizer = type(tokenizer)(tokenizer_object=tokenizer.backend_tokenizer, pad_token="[PAD]",
                                padding_side="left")
    data = TokenizedText.from_texts(TEXTS[2:], tokenizer, max_length=6)
    data.labels = data.encodings["input_ids"].clone()
    (batch,) = batches(data)
    assert batch.inputs["attention_mask"].tolist() == [[1, 1], [0, 1]]
    assert batch.inputs["input_ids"].shape == (2, 2)
    assert torch.equal(batch.labels, batch.inputs["input_ids"])


def test_a_trimmed_batch_gives_the_model_the_same_logits(tokenizer, make_bert):
    model = make_bert(layers=2)
    trimmed = TokenizedText.from_texts(TEXTS, tokenizer, max_length=12)
    full = TokenizedText.from_texts(TEXTS, tokenizer, max_length=12, trim_padding=False)
    with torch.no_grad():
        for a, b in zip(batches(trimmed), batches(full), strict=True):
            assert a.inputs["input_ids"].shape[1] < b.inputs["input_ids"].shape[1]
            torch.testing.assert_close(forward(model, a.inputs), forward(model, b.inputs),
                                       atol=1e-5, rtol=1e-4)
