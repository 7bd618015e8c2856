"""Cutting a tiny llama (grouped key/value heads, tied embeddings) to a parameter budget: the
size is met, the config stays standard (the saved folder loads in a process without distill),
a block that does nothing goes first under every measured criterion, and budgets that cannot
be met say the nearest size that can."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

transformers = pytest.importorskip("transformers")

from distill.lm import causal_blocks  # noqa: E402
from distill.lm.prune import (  # noqa: E402
    block_scores,
    check_cut,
    compare_pruning,
    parameter_count,
    prune_depth,
    prune_depth_width,
    prune_width,
)


def _llama(layers: int = 6, seed: int = 0):
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=32, hidden_size=32, num_hidden_layers=layers, num_attention_heads=4,
        num_key_value_heads=2, intermediate_size=64, max_position_embeddings=64,
        tie_word_embeddings=True)
    return transformers.LlamaForCausalLM(config).eval()


@pytest.fixture
def text(lm_tokenizer, documents):
    return causal_blocks(documents, lm_tokenizer, 16)


def _silence(model, index: int) -> None:
    """Block ``index`` adds nothing to the residual stream: its output is its input."""
    block = model.model.layers[index]
    torch.nn.init.zeros_(block.self_attn.o_proj.weight)
    torch.nn.init.zeros_(block.mlp.down_proj.weight)


def test_a_block_that_does_nothing_is_dropped_first_by_cosine(text):
    model = _llama()
    _silence(model, 3)
    scores = block_scores(model, text, "cosine", batches=2)
    assert min(range(len(scores)), key=scores.__getitem__) == 3 and abs(scores[3]) < 1e-5
    per_block = parameter_count(model.model.layers[0])
    pruned = prune_depth(model, parameter_count(model) - per_block, text, criterion="cosine")
    assert pruned.config.num_hidden_layers == 5
    ids = text.encodings["input_ids"][:2]
    with torch.no_grad():  # the silent block's removal changes nothing
        torch.testing.assert_close(pruned(input_ids=ids).logits, model(input_ids=ids).logits,
                                   rtol=1e-4, atol=1e-5)


def test_skip_scores_are_the_loss_change_and_the_lowest_goes(text):
    """Skipping the silent block changes nothing (score 0); in a random model skipping some
    other block may even lower the loss, and that block is the one to drop."""
    model = _llama()
    _silence(model, 3)
    scores = block_scores(model, text, "skip", batches=2)
    assert abs(scores[3]) < 1e-6 and any(abs(s) > 1e-4 for s in scores)
    lowest = min(range(len(scores)), key=scores.__getitem__)
    per_block = parameter_count(model.model.layers[0])
    pruned = prune_depth(model, parameter_count(model) - per_block, text, criterion="skip",
                         batches=2)
    kept = [i for i in range(6) if i != lowest]
    for new, old in enumerate(kept):
        torch.testing.assert_close(pruned.model.layers[new].mlp.up_proj.weight,
                                   model.model.layers[old].mlp.up_proj.weight)


def test_block_scores_are_read_back_for_the_same_weights_and_text_only(text, tmp_path,
                                                                      monkeypatch):
    from distill.lm import prune

    model = _llama()
    first = block_scores(model, text, "skip", batches=2, cache=tmp_path)
    assert len(list(tmp_path.glob("*.json"))) == 1

    def no_measuring(*args, **kwargs):
        raise AssertionError("measured again")

    monkeypatch.setattr(prune, "skip_importance", no_measuring)
    assert block_scores(model, text, "skip", batches=2, cache=tmp_path) == first
    with pytest.raises(AssertionError, match="measured again"):  # other calibration batches
        block_scores(model, text, "skip", batches=1, cache=tmp_path)
    with torch.no_grad():
        model.model.layers[0].mlp.up_proj.weight.add_(1.0)  # other weights
    with pytest.raises(AssertionError, match="measured again"):
        block_scores(model, text, "skip", batches=2, cache=tmp_path)
    monkeypatch.undo()
    stored = next(tmp_path.glob("*.json"))
    stored.write_text('{"scores": "import os"}')  # not scores: measured again, replaced
    fresh = _llama()
    assert block_scores(fresh, text, "skip", batches=2, cache=tmp_path) == first


def test_every_other_needs_no_data_and_spreads_the_kept_blocks():
    model = _llama()
    pruned = prune_depth(model, 0.75, criterion="every-other")
    assert parameter_count(pruned) <= 0.75 * parameter_count(model)
    assert pruned.config.num_hidden_layers == 4  # of 6, spread: blocks 0, 2, 3 and 5
    for new, old in enumerate([0, 2, 3, 5]):
        torch.testing.assert_close(pruned.model.layers[new].mlp.up_proj.weight,
                                   model.model.layers[old].mlp.up_proj.weight)
    from distill.lm.prune import _evenly_spaced

    assert _evenly_spaced(30, 19, set()) == [0, 3, 6, 9, 12, 14, 17, 20, 23, 26, 29]
    assert _evenly_spaced(6, 3, set()) == [0, 2, 5]
    assert _evenly_spaced(8, 4, {1}) == [1, 2, 5, 7]  # the protected block replaces block 0


def test_width_meets_the_budget_and_keeps_grouped_heads(text):
    model = _llama()
    pruned = prune_width(model, 0.8, text, batches=2)
    assert parameter_count(pruned) <= 0.8 * parameter_count(model)
    assert pruned.config.intermediate_size < 64
    assert pruned.config.num_key_value_heads == 2 and pruned.config.num_attention_heads == 4
    assert parameter_count(model) == parameter_count(_llama())  # the original is untouched
    ids = text.encodings["input_ids"][:2]
    assert pruned(input_ids=ids).logits.shape == model(input_ids=ids).logits.shape


def test_a_pruned_folder_loads_with_transformers_alone(tmp_path, text):
    pruned = prune_depth(_llama(), 0.6, text, criterion="skip", batches=2)
    pruned = prune_width(pruned, 0.9, text, batches=2)
    pruned.save_pretrained(tmp_path / "mini")
    ids = text.encodings["input_ids"][:1]
    with torch.no_grad():
        expected = pruned(input_ids=ids).logits[0, -1, :4].tolist()
    script = (
        "import json, sys, torch, transformers\n"
        f"m = transformers.AutoModelForCausalLM.from_pretrained({str(tmp_path / 'mini')!r})\n"
        f"ids = torch.tensor({ids.tolist()})\n"
        "with torch.no_grad():\n"
        "    out = m(input_ids=ids).logits[0, -1, :4].tolist()\n"
        "print(json.dumps({'logits': out, 'distill': any(k.startswith('distill') "
        "for k in sys.modules)}))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, timeout=120)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["distill"] is False
    assert result["logits"] == pytest.approx(expected, abs=1e-5)


def test_budgets_out_of_reach_name_the_nearest_size(text):
    model = _llama(layers=2)
    with pytest.raises(ValueError, match=r"depth pruning cannot reach .* still has [\d,]+"):
        prune_depth(model, 100, text)
    with pytest.raises(ValueError, match=r"width pruning .* still has [\d,]+"):
        prune_width(model, 100, text)
    with pytest.raises(ValueError, match="the model has only"):
        prune_depth(model, 10**9, text)


def test_other_architectures_are_refused_by_name(tokenizer):
    bert = transformers.BertForMaskedLM(transformers.BertConfig(
        vocab_size=32, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32))
    with pytest.raises(ValueError, match="supports the llama family.*'bert'"):
        prune_depth(bert, 0.5)


def test_compare_pruning_reports_each_way_before_recovery(text):
    rows = compare_pruning(_llama(), 0.7, text, text, batches=2)
    assert [r["way"] for r in rows] == ["every-other", "cosine", "skip", "width"]
    assert all(r["perplexity"] > 1 and r["params"] <= 0.7 * parameter_count(_llama())
               for r in rows)


def test_width_can_take_head_groups_first(text):
    model = _llama()
    pruned = prune_width(model, 0.8, text, head_groups=0.5, batches=2)
    assert pruned.config.num_key_value_heads == 1 and pruned.config.num_attention_heads == 2
    assert parameter_count(pruned) <= 0.8 * parameter_count(model)
    assert pruned.config.intermediate_size > prune_width(model, 0.8, text, batches=2
                                                         ).config.intermediate_size
    ids = text.encodings["input_ids"][:2]
    assert pruned(input_ids=ids).logits.shape == model(input_ids=ids).logits.shape
    assert all(p.grad is None for p in pruned.parameters())  # no calibration gradients left
    with pytest.raises(ValueError, match="head_groups must be a share"):
        prune_width(model, 0.8, text, head_groups=1.0)


def test_depth_and_width_keeps_the_blocks_asked_and_narrows_to_the_budget(text):
    model = _llama(layers=6)
    _silence(model, 2)
    budget = int(0.6 * parameter_count(model))
    pruned = prune_depth_width(model, 0.6, text, blocks=4, criterion="skip", batches=2)
    assert pruned.config.num_hidden_layers == 4
    assert parameter_count(pruned) <= budget
    # one neuron more a block would be over the budget: the narrowing took no more than it must
    assert parameter_count(pruned) + 3 * 32 * 4 > budget
    assert 1 <= pruned.config.intermediate_size < 64
    depth_only = prune_depth(model, 0.6, text, criterion="skip", batches=2)
    assert depth_only.config.num_hidden_layers < 4  # depth alone drops more blocks
    ids = text.encodings["input_ids"][:2]
    assert pruned(input_ids=ids).logits.shape == model(input_ids=ids).logits.shape


@pytest.mark.parametrize(("way", "options"), [
    ("depth", {}), ("width", {}), ("width", {"head_groups": 0.5}),
    ("depth+width", {"blocks": 3}), ("depth+width", {"blocks": 5, "head_groups": 0.5})])
def test_the_shape_a_cut_leaves_is_known_from_the_config_alone(text, way, options):
    """``check_cut`` on a model built on the meta device (no weights) says the shape the real
    cut ends with, so a recipe's check can refuse a budget before anything runs."""
    model = _llama(layers=6)
    with torch.device("meta"):
        bare = transformers.LlamaForCausalLM(model.config)
    planned = check_cut(bare, 0.7, way, **options)
    if way == "depth":
        cut = prune_depth(model, 0.7, text, criterion="skip", batches=2)
    elif way == "width":
        cut = prune_width(model, 0.7, text, batches=2, **options)
    else:
        cut = prune_depth_width(model, 0.7, text, batches=2, **options)
    assert planned == {"blocks": cut.config.num_hidden_layers,
                       "intermediate_size": cut.config.intermediate_size}
    assert parameter_count(cut) <= 0.7 * parameter_count(model)


def test_depth_and_width_names_what_it_cannot_reach(text):
    model = _llama(layers=6)
    with pytest.raises(ValueError, match=r"with 5 blocks, one MLP neuron .* still has [\d,]+; "
                                         r"ask for at least that, or keep fewer blocks"):
        prune_depth_width(model, 0.3, text, blocks=5)
    with pytest.raises(ValueError, match="blocks must be between 1 and the model's 6, got 7"):
        prune_depth_width(model, 0.5, text, blocks=7)
    with pytest.raises(ValueError, match="way 'depth\\+width' keeps a chosen number of blocks"):
        check_cut(model, 0.5, "depth+width")
    with pytest.raises(ValueError, match="way must be"):
        check_cut(model, 0.5, "sideways")
