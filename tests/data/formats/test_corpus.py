"""text-corpus: plain text or JSONL for causal language models, held out by whole documents."""

from __future__ import annotations

import json

import pytest
import torch

from distill.data import check_data, load_data
from distill.data.formats import DataError

DOCS = ["the film good great", "a plot bad awful", "the plot fine", "a film poor bad",
        "the good film", "a great plot"]


def test_plain_text_becomes_next_token_blocks(tmp_path, tokenizer):
    (tmp_path / "corpus.txt").write_text("\n\n".join(DOCS * 3))
    found = check_data("text-corpus", path=tmp_path / "corpus.txt", test_fraction=0.25)
    assert found.input_kind == "text" and found.counts == {"train": 14, "test": 4}
    data = load_data("text-corpus", tokenizer=tokenizer, path=tmp_path / "corpus.txt",
                     test_fraction=0.25, block_length=4)
    sample = data.train[0]
    assert sample["input_ids"].shape == (4,) and sample["labels"].shape == (4,)
    assert data.train.info.task == "causal-lm"  # scored by perplexity, not accuracy
    assert (data.train.encodings["input_ids"][0, 1:] == data.train.labels[0, :-1]).all()


def test_test_blocks_spread_over_the_whole_held_out_text(tmp_path, tokenizer):
    (tmp_path / "train.txt").write_text("\n\n".join(DOCS * 3))
    (tmp_path / "test.txt").write_text("\n\n".join(DOCS * 4))
    options = dict(tokenizer=tokenizer, path=tmp_path / "train.txt", test=tmp_path / "test.txt",
                   block_length=4)
    every = load_data("text-corpus", **options).test.encodings["input_ids"]
    data = load_data("text-corpus", max_blocks=2, test_blocks=3, **options)
    assert len(data.train) == 2  # max_blocks bounds the training text alone
    picked = data.test.encodings["input_ids"]
    assert picked.shape == (3, 4) and len(every) >= 9
    # the first, the middle and the last blocks, not the first three
    middle = [i for i in range(len(every)) if torch.equal(every[i], picked[1])]
    assert torch.equal(picked[0], every[0]) and torch.equal(picked[-1], every[-1])
    assert any(abs(i - (len(every) - 1) / 2) <= 0.5 for i in middle)
    assert (data.test.encodings["input_ids"][:, 1:] == data.test.labels[:, :-1]).all()


def test_prompt_completion_pairs_learn_only_the_completion(tmp_path, tokenizer):
    rows = [{"q": "the film", "a": "good great"}, {"q": "a plot", "a": "bad awful"}] * 4
    (tmp_path / "pairs.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    data = load_data("text-corpus", tokenizer=tokenizer, path=tmp_path / "pairs.jsonl",
                     test_fraction=0.25, prompt_field="q", completion_field="a")
    labels = data.train.labels[0]
    assert (labels[:1] == -100).all() and (labels[1:3] >= 0).all()  # prompt masked


def test_pairs_are_scored_on_plain_held_out_text(tmp_path, tokenizer):
    """Sequence-level distillation: trained on a teacher's completions, measured on real text."""
    rows = [{"q": "the film", "a": "good great"}, {"q": "a plot", "a": "bad awful"}] * 4
    (tmp_path / "pairs.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "held.txt").write_text("\n\n".join(DOCS))
    data = load_data("text-corpus", tokenizer=tokenizer, path=tmp_path / "pairs.jsonl",
                     test=tmp_path / "held.txt", prompt_field="q", completion_field="a",
                     block_length=4)
    assert (data.train.labels[:, :1] == -100).all()
    assert data.test.encodings["input_ids"].shape[1] == 4 and (data.test.labels >= 0).all()


def test_bad_corpora_are_named(tmp_path):
    (tmp_path / "rows.jsonl").write_text('{"body": "x"}\n')
    with pytest.raises(DataError, match="line 1: no text field 'text' \\(fields: body\\)"):
        check_data("text-corpus", path=tmp_path / "rows.jsonl", test_fraction=0.5)
    with pytest.raises(DataError, match="prompt_field and completion_field together"):
        check_data("text-corpus", path=tmp_path / "rows.jsonl", test_fraction=0.5,
                   prompt_field="q")
    (tmp_path / "one.txt").write_text("only one document")
    with pytest.raises(DataError, match="leaves no"):
        check_data("text-corpus", path=tmp_path / "one.txt", test_fraction=0.5)
