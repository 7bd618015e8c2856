"""Sequence-level distillation data: the teacher's completions written as a JSON Lines corpus
that records how they were generated and that a recipe's text-corpus format reads back."""

from __future__ import annotations

import json

import pytest

from distill.data.formats import DATA_FORMATS
from distill.lm import write_generations


def test_completions_are_written_with_their_settings_and_read_back(tmp_path, make_llama,
                                                                    lm_tokenizer):
    teacher = make_llama(layers=1)
    prompts = ["the good film", "a bad plot", "very great acting", "not fine"]
    path = write_generations(teacher, lm_tokenizer, prompts, tmp_path / "gen" / "corpus.jsonl",
                             max_new_tokens=5, temperature=0.8, top_p=0.9, seed=3)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["prompt"] for r in rows] == prompts
    assert all(isinstance(r["completion"], str) for r in rows)
    assert rows[0]["generation"] == {"model": rows[0]["generation"]["model"],
                                     "max_new_tokens": 5, "seed": 3, "do_sample": True,
                                     "temperature": 0.8, "top_k": 0, "top_p": 0.9}
    again = write_generations(teacher, lm_tokenizer, prompts, tmp_path / "again.jsonl",
                              max_new_tokens=5, temperature=0.8, top_p=0.9, seed=3)
    assert again.read_text() == path.read_text()  # the seed makes sampling repeatable
    corpus = DATA_FORMATS.get("text-corpus")
    options = corpus.Options(path=path, prompt_field="prompt", completion_field="completion",
                             test_fraction=0.25, max_length=16)
    loaded = corpus.load(options, tokenizer=lm_tokenizer)
    assert len(loaded.train) + len(loaded.test) == 4
    labels = loaded.train.labels
    assert (labels == -100).any() and (labels != -100).any()  # prompts masked, completions kept


def test_min_new_tokens_holds_back_the_end_of_sequence(tmp_path, make_llama, lm_tokenizer):
    """An instruct teacher often ends a continuation early; a corpus meant to hold a known
    number of tokens asks for at least that many, and the corpus says so."""
    teacher = make_llama(layers=1)
    prompt = ["the good film"]
    encoded = lm_tokenizer(prompt, return_tensors="pt")
    first = teacher.generate(**encoded, max_new_tokens=1, do_sample=False,
                             pad_token_id=lm_tokenizer.pad_token_id)[0, -1].item()
    teacher.generation_config.eos_token_id = first  # greedy decoding now ends at once
    path = write_generations(teacher, lm_tokenizer, prompt, tmp_path / "early.jsonl",
                             max_new_tokens=6)
    held = write_generations(teacher, lm_tokenizer, prompt, tmp_path / "held.jsonl",
                             max_new_tokens=6, min_new_tokens=6)
    early, full = (json.loads(p.read_text()) for p in (path, held))
    assert "min_new_tokens" not in early["generation"]
    assert full["generation"]["min_new_tokens"] == 6
    ids = [lm_tokenizer(r["completion"], add_special_tokens=False)["input_ids"]
           for r in (early, full)]
    assert len(ids[0]) <= 1 < len(ids[1])
    with pytest.raises(ValueError, match="min_new_tokens must be between 0 and max_new_tokens"):
        write_generations(teacher, lm_tokenizer, prompt, tmp_path / "bad.jsonl",
                          max_new_tokens=4, min_new_tokens=5)
    assert not (tmp_path / "bad.jsonl").exists()
