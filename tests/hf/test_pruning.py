"""Structured pruning of transformers: uniform shapes a transformers config can describe."""

from __future__ import annotations

import pytest
import torch
import transformers

from distill.evaluate.size import count_parameters
from distill.hf import save_pretrained
from distill.hf.pruning import block_importance, drop_blocks, prune_heads, prune_neurons


def _logits(model, data):
    with torch.no_grad():
        return model(**{k: v[:8] for k, v in data.encodings.items()}).logits


@pytest.mark.parametrize("importance", ["magnitude", "taylor", "activation"])
def test_bert_neurons_go_and_transformers_reloads_it(make_bert, reviews, tmp_path, importance):
    train, test = reviews
    model = make_bert(layers=2, hidden=16, heads=4)
    before = count_parameters(model)
    prune_neurons(model, 0.5, importance=importance, data=train)
    assert model.config.intermediate_size == 16
    assert all(b.intermediate.dense.out_features == 16 for b in model.bert.encoder.layer)
    assert count_parameters(model) < before
    with pytest.raises(ValueError, match="prune neurons or blocks"):
        prune_heads(model, 0.5)
    save_pretrained(model, tmp_path / "pruned")
    reloaded = transformers.AutoModelForSequenceClassification.from_pretrained(
        tmp_path / "pruned").eval()
    torch.testing.assert_close(_logits(reloaded, test), _logits(model.eval(), test))


def test_llama_neurons_and_head_groups_go_and_transformers_reloads_it(tmp_path):
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=32, hidden_size=32, num_hidden_layers=2, num_attention_heads=8,
        num_key_value_heads=4, intermediate_size=32, max_position_embeddings=32)).eval()
    ids = {"input_ids": torch.randint(0, 32, (2, 6))}
    prune_neurons(model, 0.25)
    prune_heads(model, 0.5)
    mlp, attention = model.model.layers[0].mlp, model.model.layers[0].self_attn
    assert mlp.gate_proj.out_features == mlp.up_proj.out_features == mlp.down_proj.in_features
    assert mlp.gate_proj.out_features == 24
    # 2 of 4 key/value heads (of size 4) stay, each with its 2 query heads
    assert (attention.k_proj.out_features, attention.q_proj.out_features) == (8, 16)
    assert attention.o_proj.in_features == 16
    save_pretrained(model, tmp_path / "llama")
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "llama").eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**ids).logits, model.eval()(**ids).logits)


def test_the_blocks_that_change_least_are_dropped(make_bert, reviews):
    train, _ = reviews
    model = make_bert(layers=4, hidden=16)
    with torch.no_grad():  # make block 2 nearly an identity: its output ~ its input
        block = model.bert.encoder.layer[2]
        block.output.dense.weight.zero_()
        block.output.dense.bias.zero_()
        block.attention.output.dense.weight.zero_()
        block.attention.output.dense.bias.zero_()
    scores = block_importance(model, train)
    assert len(scores) == 4 and min(range(4), key=scores.__getitem__) == 2
    smaller = drop_blocks(model, 1, train)
    assert smaller.config.num_hidden_layers == 3
    with pytest.raises(ValueError, match="count must be within"):
        drop_blocks(model, 4, train)
