"""A causal-LM recipe end to end: a tiny Llama teacher, its first block as the student."""

from __future__ import annotations

import json

import pytest

from distill.cli import main
from distill.recipes import RecipeError, load_recipe


@pytest.fixture
def lm_recipe(tmp_path, make_llama, lm_tokenizer, documents, monkeypatch):
    monkeypatch.setenv("DISTILL_CACHE", str(tmp_path / "cache"))
    teacher = make_llama(layers=2, hidden=16)
    teacher.save_pretrained(tmp_path / "teacher")
    lm_tokenizer.save_pretrained(tmp_path / "teacher")
    (tmp_path / "corpus.txt").write_text("\n\n".join(documents))
    recipe = tmp_path / "recipe.toml"
    recipe.write_text("""
name = "tiny-lm"
task = "causal-lm"
[data]
format = "text-corpus"
path = "corpus.txt"
test_fraction = 0.2
block_length = 8
[teacher]
arch = "hf"
model = "teacher"
[student]
arch = "hf-layers"
layers = [0]
[loss]
divergence = "forward"
alpha = 0.9
temperature = 1.0
[train]
epochs = 1
batch_size = 8
[baseline]
enabled = true
[evaluate]
latency_repeats = 2
batch_sizes = [1]
""")
    return recipe


def test_a_causal_lm_recipe_runs_and_reports_perplexity(tmp_path, lm_recipe, capsys):
    out = tmp_path / "run"
    assert main(["run", str(lm_recipe), "--check"]) == 0
    assert main(["run", str(lm_recipe), "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "causal-lm"
    for role in ("teacher", "student", "baseline"):
        assert metrics[role]["perplexity"] > 1
    assert {"retention", "speedup", "compression"} <= set(metrics)
    assert metrics["compression"] > 1 and "kl_to_teacher" in metrics["student"]
    assert metrics["generations"] and "teacher" in metrics["generations"][0]
    report = (out / "report.md").read_text()
    assert "Sample continuations" in report and "perplexity" in report
    assert "Sample continuations" in (out / "report.html").read_text()
    assert (out / "student" / "tokenizer.json").is_file()  # a transformers folder, tokenizer too
    capsys.readouterr()
    assert main(["eval", str(out / "student"), "--recipe", str(lm_recipe), "--json",
                 "--repeats", "2"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["student"]["perplexity"] == pytest.approx(
        metrics["student"]["perplexity"], rel=1e-5)


def test_a_corpus_without_the_lm_task_is_refused(tmp_path, lm_recipe):
    text = lm_recipe.read_text().replace('task = "causal-lm"\n', 'task = "classification"\n')
    lm_recipe.write_text(text)
    with pytest.raises(RecipeError, match="set task = 'causal-lm'"):
        load_recipe(lm_recipe)


def test_a_student_with_another_vocabulary_is_refused_before_training(tmp_path, lm_recipe,
                                                                       capsys):
    text = lm_recipe.read_text().replace('arch = "hf-layers"\nlayers = [0]',
                                         'arch = "hf-scratch"\nconfig = {vocab_size = 40}')
    lm_recipe.write_text(text)
    assert main(["run", str(lm_recipe), "--out", str(tmp_path / "run"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "share one tokenizer" in err and "vocabulary size: teacher 32, student 40" in err
    assert not (tmp_path / "run" / "checkpoints" / "student").exists()  # nothing trained


def test_check_finds_a_test_split_too_short_for_one_block(tmp_path, lm_recipe, capsys):
    """--check reads the corpus through the teacher's tokenizer, as the run will."""
    lm_recipe.write_text(lm_recipe.read_text().replace("block_length = 8", "block_length = 400"))
    assert main(["run", str(lm_recipe), "--check"]) == 1
    err = capsys.readouterr().err
    assert "[data] read by the teacher's tokenizer" in err and "no block of 400" in err
    assert "Traceback" not in err


def test_latency_batch_sizes_default_to_one_and_eight_for_a_language_model(lm_recipe):
    text = lm_recipe.read_text()
    assert load_recipe(lm_recipe).evaluate.batch_sizes == [1]  # as the recipe says
    lm_recipe.write_text(text.replace("batch_sizes = [1]\n", ""))
    assert load_recipe(lm_recipe).evaluate.batch_sizes == [1, 8]


def test_check_finds_a_student_with_another_vocabulary(tmp_path, lm_recipe, capsys):
    text = lm_recipe.read_text().replace('arch = "hf-layers"\nlayers = [0]',
                                         'arch = "hf-scratch"\nconfig = {vocab_size = 40}')
    lm_recipe.write_text(text)
    assert main(["run", str(lm_recipe), "--check"]) == 1
    err = capsys.readouterr().err
    assert "share one tokenizer" in err and "vocabulary size: teacher 32, student 40" in err


def test_a_fine_tuned_teacher_is_reported_beside_its_general_self(tmp_path, lm_recipe):
    text = lm_recipe.read_text().replace(
        "[student]", "[teacher.finetune]\nepochs = 2\nbatch_size = 8\nlr = 0.01\n[student]")
    lm_recipe.write_text(text)
    assert main(["run", str(lm_recipe), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    general = metrics["teacher_before_finetune"]["perplexity"]
    assert metrics["teacher"]["perplexity"] < general  # tuned on this text: it fits it better
    assert "The teacher before fine-tuning on this text" in (tmp_path / "run" /
                                                            "report.md").read_text()


@pytest.mark.parametrize(("way", "criterion"), [("depth", "skip"), ("width", "skip"),
                                               ("depth+width", "cosine")])
def test_a_student_cut_from_the_teacher_is_recovered_and_reported(tmp_path, make_llama,
                                                                  lm_tokenizer, lm_recipe,
                                                                  capsys, way, criterion):
    make_llama(layers=4, hidden=16).save_pretrained(tmp_path / "teacher")
    blocks = "blocks = 3\n" if way == "depth+width" else ""
    text = lm_recipe.read_text().replace(
        'arch = "hf-layers"\nlayers = [0]',
        f'arch = "hf-pruned"\nsize = 0.75\nway = "{way}"\ncriterion = "{criterion}"\n'
        f"{blocks}calibration_batches = 2")
    lm_recipe.write_text(text)
    out = tmp_path / "run"
    assert main(["run", str(lm_recipe), "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    cut = metrics["student_before_recovery"]
    assert cut["params"] == metrics["student"]["params"] == metrics["baseline"]["params"]
    assert cut["params"] <= 0.75 * metrics["teacher"]["params"]
    assert (cut["blocks"] < 4) if way == "depth" else (cut["intermediate_size"] < 32)
    assert cut["blocks"] == 3 if way == "depth+width" else True
    assert metrics["student"]["perplexity"] < cut["perplexity"]  # recovery recovered something
    assert "before recovery" in (out / "report.md").read_text()
    capsys.readouterr()
    assert main(["eval", str(out / "student"), "--recipe", str(lm_recipe), "--json",
                 "--repeats", "2"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["student"]["perplexity"] == pytest.approx(
        metrics["student"]["perplexity"], rel=1e-5)


def test_the_cut_architecture_can_start_from_fresh_weights(tmp_path, make_llama, lm_recipe):
    make_llama(layers=4, hidden=16).save_pretrained(tmp_path / "teacher")
    text = lm_recipe.read_text().replace(
        'arch = "hf-layers"\nlayers = [0]',
        'arch = "hf-pruned"\nsize = 0.75\ncalibration_batches = 2\ninit = "random"').replace(
        "enabled = true", "enabled = false")
    lm_recipe.write_text(text)
    out = tmp_path / "run"
    assert main(["run", str(lm_recipe), "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    cut = metrics["student_before_recovery"]
    assert cut["init"] == "random" and cut["params"] == metrics["student"]["params"]
    assert cut["params"] <= 0.75 * metrics["teacher"]["params"]
    # fresh weights know nothing: about as perplexed as a uniform guess over the vocabulary
    vocab = json.loads((tmp_path / "teacher" / "config.json").read_text())["vocab_size"]
    assert cut["perplexity"] > 0.5 * vocab


def test_a_cut_student_is_refused_for_classifiers(tmp_path):
    from distill.recipes import parse_recipe

    with pytest.raises(Exception, match="arch = 'hf-pruned' cuts a causal language model"):
        parse_recipe({"data": {"dataset": "rotten-tomatoes"},
                      "teacher": {"arch": "hf", "model": "x"},
                      "student": {"arch": "hf-pruned", "size": 0.5}})


def test_export_writes_checked_gguf_files_and_check_refuses_what_it_cannot_write(
        tmp_path, lm_recipe, capsys):
    pytest.importorskip("gguf")
    text = lm_recipe.read_text() + '\n[export]\ngguf = ["f16", "q8_0"]\n'
    lm_recipe.write_text(text)
    assert main(["run", str(lm_recipe), "--check"]) == 1  # the test tokenizer is word-level
    err = capsys.readouterr().err
    assert "[export] GGUF export writes byte-level BPE tokenizers" in err
    assert not (tmp_path / "run").exists()


def test_a_recipe_ships_its_student_as_gguf(tmp_path, bpe_tokenizer, bpe_text, monkeypatch):
    pytest.importorskip("gguf")
    import torch
    import transformers

    monkeypatch.setenv("DISTILL_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    teacher = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=len(bpe_tokenizer), hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, intermediate_size=64,
        max_position_embeddings=64, tie_word_embeddings=True))
    teacher.save_pretrained(tmp_path / "teacher")
    bpe_tokenizer.save_pretrained(tmp_path / "teacher")
    (tmp_path / "corpus.txt").write_text("\n\n".join(bpe_text * 3))
    recipe = tmp_path / "recipe.toml"
    recipe.write_text("""
name = "mini"
task = "causal-lm"
[data]
format = "text-corpus"
path = "corpus.txt"
test_fraction = 0.25
block_length = 16
[teacher]
arch = "hf"
model = "teacher"
[student]
arch = "hf-layers"
layers = [0]
[train]
epochs = 1
batch_size = 4
[evaluate]
latency_repeats = 2
batch_sizes = [1]
[export]
gguf = ["q8_0"]
""")
    out = tmp_path / "run"
    assert main(["run", str(recipe), "--check"]) == 0
    assert main(["run", str(recipe), "--out", str(out), "--quiet"]) == 0
    entry = json.loads((out / "metrics.json").read_text())["gguf"]["q8_0"]
    assert (out / entry["file"]).is_file() and entry["bytes"] > 0
    assert entry["top1_agreement"] >= 0.9
    assert entry["perplexity"] == pytest.approx(entry["student_perplexity"], rel=0.1)
    assert "Shipped for llama.cpp as `student-q8_0.gguf`" in (out / "report.md").read_text()


def test_head_groups_go_with_width_and_blocks_with_depth_and_width():
    from distill.recipes.schema import HFPrunedStudent

    with pytest.raises(ValueError, match="head_groups cuts attention heads"):
        HFPrunedStudent(arch="hf-pruned", size=0.5, head_groups=0.5)
    assert HFPrunedStudent(arch="hf-pruned", size=0.5, way="width", head_groups=0.5)
    with pytest.raises(ValueError, match="way = 'depth\\+width' needs blocks"):
        HFPrunedStudent(arch="hf-pruned", size=0.5, way="depth+width")
    with pytest.raises(ValueError, match=r"blocks goes with way = 'depth\+width' \(way is 'w"):
        HFPrunedStudent(arch="hf-pruned", size=0.5, way="width", blocks=3)
    assert HFPrunedStudent(arch="hf-pruned", size=0.5, way="depth+width", blocks=3,
                           head_groups=0.5).blocks == 3


@pytest.mark.parametrize(("student", "said"), [
    ('size = 0.01\nway = "depth"', "depth pruning cannot reach"),
    ('size = 0.3\nway = "depth+width"\nblocks = 3', "with 3 blocks, one MLP neuron"),
    ('size = 0.5\nway = "depth+width"\nblocks = 9', "blocks must be between 1 and the model's 4"),
])
def test_a_size_the_cut_cannot_reach_is_refused_before_any_work(tmp_path, make_llama,
                                                                lm_recipe, capsys, student,
                                                                said):
    """Found from the teacher's config alone: by --check, and by the run before the teacher
    is tuned; the message names the nearest size the cut reaches."""
    make_llama(layers=4, hidden=16).save_pretrained(tmp_path / "teacher")
    lm_recipe.write_text(lm_recipe.read_text().replace(
        'arch = "hf-layers"\nlayers = [0]', f'arch = "hf-pruned"\n{student}').replace(
        'model = "teacher"', 'model = "teacher"\n[teacher.finetune]\nepochs = 1'))
    assert main(["run", str(lm_recipe), "--check"]) == 1
    err = capsys.readouterr().err
    assert "[student] size = " in err and said in err and "Traceback" not in err
    assert main(["run", str(lm_recipe), "--out", str(tmp_path / "run"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err
    assert not (tmp_path / "cache" / "teachers").exists()  # the teacher was never tuned


@pytest.mark.parametrize(("targets", "name", "top_k"), [
    ("samples = 8", "sampled8-T1-s0", None),
    ("top_k = 4\nsamples = 4", "top4sampled4-T1-s0", 4),  # hybrid
])
def test_a_recipe_distils_from_cached_sampled_targets(tmp_path, lm_recipe, targets, name, top_k):
    text = lm_recipe.read_text().replace('model = "teacher"',
                                         f'model = "teacher"\noutputs = "cached"\n{targets}')
    lm_recipe.write_text(text)
    assert main(["run", str(lm_recipe), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    caches = list((tmp_path / "cache" / "teacher-outputs").iterdir())
    assert len(caches) == 1 and name in caches[0].name
    manifest = json.loads((caches[0] / "manifest.json").read_text())
    assert manifest["fingerprint"]["settings"]["kind"] == "sampled"
    assert manifest["fingerprint"]["settings"]["top_k"] == top_k
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["student"]["perplexity"] > 1
    reverse = text.replace('divergence = "forward"', 'divergence = "reverse"')
    lm_recipe.write_text(reverse)
    with pytest.raises(RecipeError, match="samples .* estimate the forward KL"):
        load_recipe(lm_recipe)
