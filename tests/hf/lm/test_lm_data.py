"""Next-token datasets, tokenizer checks, generation and the quality measure of LMs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from distill.lm import (
    causal_blocks,
    check_same_tokenizer,
    generate,
    lm_metrics,
    prompt_completions,
    teacher_generations,
)


def test_blocks_are_documents_joined_by_eos_with_next_token_labels(lm_tokenizer, documents):
    data = causal_blocks(documents, lm_tokenizer, block_length=16, name="docs")
    ids, labels = data.encodings["input_ids"], data.labels
    assert ids.shape == labels.shape and ids.shape[1] == 16
    assert torch.equal(ids[:, 1:], labels[:, :-1])  # labels are the inputs, one step ahead
    assert torch.equal(labels[:-1, -1], ids[1:, 0])  # and blocks continue one another
    assert (ids == lm_tokenizer.eos_token_id).any()
    assert len(causal_blocks(documents, lm_tokenizer, 16, max_blocks=3)) == 3
    with pytest.raises(ValueError, match="no block of 1000 positions"):
        causal_blocks(documents[:1], lm_tokenizer, 1000, name="tiny")


def test_only_completions_are_learned(lm_tokenizer):
    data = prompt_completions(["the film", "a"], ["very good", "very bad plot not"],
                              lm_tokenizer)
    ids, labels = data.encodings["input_ids"], data.labels
    v = lm_tokenizer.get_vocab()
    # "the film very good [SEP]": inputs drop the last token; the prompt predicts nothing but
    # its last position, which predicts the completion's first token
    assert ids[0, :4].tolist() == [v["the"], v["film"], v["very"], v["good"]]
    assert labels[0].tolist() == [-100, v["very"], v["good"], v["[SEP]"], -100]  # padded
    assert data.encodings["attention_mask"][0].tolist() == [1, 1, 1, 1, 0]
    assert labels[1].tolist() == [v["very"], v["bad"], v["plot"], v["not"], v["[SEP]"]]
    with pytest.raises(ValueError, match="2 prompts but 1 completions"):
        prompt_completions(["a", "b"], ["c"], lm_tokenizer)


def test_a_different_tokenizer_is_refused_saying_what_differs(lm_tokenizer, tokenizer):
    check_same_tokenizer(lm_tokenizer, lm_tokenizer)
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[SEP]", "good", "bad", "the"])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    other = transformers.PreTrainedTokenizerFast(tokenizer_object=core, pad_token="[PAD]",
                                                 unk_token="[UNK]", eos_token="[SEP]")
    with pytest.raises(ValueError) as err:
        check_same_tokenizer(lm_tokenizer, other)
    message = str(err.value)
    assert "vocabulary size: teacher 18, student 6" in message
    assert "eos_token: teacher '[SEP]' (id 3), student '[SEP]' (id 2)" in message
    assert "tokens have other ids" in message and "not in the student's vocabulary" in message


def test_greedy_generation_is_repeatable_and_becomes_training_data(make_llama, lm_tokenizer):
    model = make_llama(layers=1)
    model.train()
    first = generate(model, lm_tokenizer, ["the film", "bad"], max_new_tokens=5)
    assert first == generate(model, lm_tokenizer, ["the film", "bad"], max_new_tokens=5)
    assert len(first) == 2 and all(isinstance(t, str) for t in first)
    assert model.training  # handed back as it came
    data = teacher_generations(model, lm_tokenizer, ["the film", "bad plot"], max_new_tokens=5,
                               progress=False)
    assert len(data) == 2 and bool((data.labels != -100).any())


def test_perplexity_is_the_exponent_of_cross_entropy(make_llama, lm_tokenizer, documents):
    model, teacher = make_llama(layers=1, seed=3), make_llama(layers=2, seed=4)
    data = causal_blocks(documents, lm_tokenizer, 12, max_blocks=6)
    data.labels[0, :5] = -100
    scores = lm_metrics(model, data, teacher=teacher, batch_size=4, chunk_size=5)
    with torch.no_grad():
        logits = model(**data.encodings).logits
        t_logits = teacher(**data.encodings).logits
    keep = data.labels != -100
    ce = F.cross_entropy(logits[keep], data.labels[keep])
    assert scores["tokens"] == int(keep.sum())
    assert scores["perplexity"] == pytest.approx(math.exp(float(ce)), rel=1e-4)
    kl = F.kl_div(logits[keep].log_softmax(-1), t_logits[keep].log_softmax(-1), log_target=True,
                  reduction="batchmean")
    assert scores["kl_to_teacher"] == pytest.approx(float(kl), rel=1e-4)


def test_distilling_between_vocabularies_is_refused_before_training(make_llama, documents,
                                                                     lm_tokenizer):
    import transformers

    import distill

    config = transformers.LlamaConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1,
                                      num_attention_heads=2, intermediate_size=32, eos_token_id=5)
    other = transformers.LlamaForCausalLM(config)
    data = causal_blocks(documents, lm_tokenizer, 8, max_blocks=4)
    with pytest.raises(ValueError, match="eos_token_id: teacher 2, student 5") as err:
        distill.distill(make_llama(layers=1), other, data, loss=distill.TokenKDLoss(),
                        progress=False)
    assert "vocabulary size: teacher 32, student 40" in str(err.value)
