"""Sequence-level distillation data: the teacher's completions written as a JSON Lines corpus
that records how they were generated and that a recipe's text-corpus format reads back."""

from __future__ import annotations

import json

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
