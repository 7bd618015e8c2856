from __future__ import annotations

import bz2
import json

import pytest
import torch

from distill.recipes.loader import RecipeError, load_recipe
from distill.recipes.runner import run_recipe

RECIPE = """
[data]
dataset = "rotten-tomatoes"
root = "{corpus}"
max_length = 8

[teacher]
arch = "hf"
model = "{teacher}"

[teacher.finetune]
epochs = 6
batch_size = 16
lr = 0.005

[student]
arch = "hf-layers"

[loss]
temperature = 2.0
alpha = 0.5

[loss.hidden]
weight = 1.0
kind = "cosine"

[train]
epochs = 3
batch_size = 16
lr = 0.002

[baseline]
enabled = true

[evaluate]
batch_sizes = [1, 4]
latency_repeats = 3
"""


def _corpus(tmp_path, texts, labels):
    rows = ["category,text,movie_name,has_plot_and_reviews"]
    rows += [f'{"fresh" if y else "rotten"},"{t} {i}",m,True'
             for i, (t, y) in enumerate(zip(texts, labels, strict=True))]
    path = tmp_path / "corpus.csv.bz2"
    with bz2.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(rows) + "\n")
    return path


@pytest.fixture
def hf_recipe(tmp_path, make_bert, tokenizer, reviews_texts):
    from distill.hf import save_pretrained

    teacher_dir = save_pretrained(make_bert(layers=4), tmp_path / "teacher", tokenizer)
    corpus = _corpus(tmp_path, *reviews_texts)
    return RECIPE.format(corpus=corpus, teacher=teacher_dir)


def parse(text: str, tmp_path):
    path = tmp_path / "recipe.toml"
    path.write_text(text)
    return load_recipe(path)


def test_a_recipe_distils_a_hugging_face_teacher_into_its_own_layers(hf_recipe, tmp_path,
                                                                      cache_dir):
    transformers = pytest.importorskip("transformers")
    recipe = parse(hf_recipe, tmp_path)
    metrics = run_recipe(recipe, tmp_path / "run", recipe_text=hf_recipe, progress=False)
    assert metrics["teacher"]["accuracy"] >= 0.8
    assert metrics["student"]["accuracy"] >= 0.8
    assert "baseline" in metrics and metrics["compression"] > 1.0
    student_dir = tmp_path / "run" / "student"
    model = transformers.AutoModelForSequenceClassification.from_pretrained(student_dir)
    tok = transformers.AutoTokenizer.from_pretrained(student_dir)
    assert model.config.num_hidden_layers == 2
    assert model(**tok(["good film"], return_tensors="pt")).logits.shape == (1, 2)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["student"]["accuracy"] == metrics["student"]["accuracy"]
    cached = list((cache_dir / "teachers").iterdir())
    assert len(cached) == 1 and (cached[0] / "tokenizer.json").is_file()
    # a second run reuses the fine-tuned teacher instead of fine-tuning again
    again = run_recipe(recipe, tmp_path / "run2", progress=False)
    assert again["teacher"]["accuracy"] == metrics["teacher"]["accuracy"]
    assert again["history"]["teacher"] == []


@pytest.mark.parametrize("change, message", [
    ({"student": '[student]\narch = "cnn"\nchannels = [4]'}, "needs a Hugging Face student"),
    ({"teacher_outputs": 'outputs = "precomputed"'}, "needs \\[teacher\\] outputs = 'online'"),
])
def test_inconsistent_hugging_face_recipes_are_refused(hf_recipe, change, message, tmp_path):
    text = hf_recipe
    if "student" in change:
        text = text.replace('[student]\narch = "hf-layers"', change["student"])
    if "teacher_outputs" in change:
        text = text.replace('arch = "hf"\n', 'arch = "hf"\n' + change["teacher_outputs"] + "\n")
    with pytest.raises(RecipeError, match=message):
        parse(text, tmp_path)


def test_text_data_needs_a_hugging_face_teacher(tmp_path):
    text = """
[data]
dataset = "rotten-tomatoes"
[teacher]
arch = "mlp"
[student]
arch = "mlp"
"""
    with pytest.raises(RecipeError, match="needs a Hugging Face teacher"):
        parse(text, tmp_path)


def test_layer_map_keys_from_toml_become_block_indices():
    from distill.recipes.runner import _layer_map

    assert _layer_map({"0": 1, "1": 3}) == {0: 1, 1: 3}
    assert _layer_map({"bert.encoder.layer.0": "bert.encoder.layer.1"}) == {
        "bert.encoder.layer.0": "bert.encoder.layer.1"}
    assert _layer_map(None) is None


EMBEDDING_RECIPE = """
[data]
dataset = "rotten-tomatoes"
root = "{corpus}"
max_length = 8

[teacher]
arch = "hf"
model = "{teacher}"
task = "sentence-embedding"
outputs = "precomputed"

[student]
arch = "hf-scratch"
config = {{ num_hidden_layers = 2 }}

[loss]
kind = "embedding"
distance = "cosine"

[train]
epochs = 6
batch_size = 16
lr = 0.01

[evaluate]
batch_sizes = [1, 4]
latency_repeats = 3
"""


def test_a_recipe_distils_sentence_embeddings(tmp_path, make_bert, tokenizer, reviews_texts):
    import distill
    from distill.hf import SentenceEncoder, save_pretrained

    encoder = make_bert(layers=4).bert
    teacher_dir = save_pretrained(encoder, tmp_path / "encoder", tokenizer)
    text = EMBEDDING_RECIPE.format(corpus=_corpus(tmp_path, *reviews_texts), teacher=teacher_dir)
    metrics = run_recipe(parse(text, tmp_path), tmp_path / "run", recipe_text=text,
                         progress=False)
    before = metrics["student_before_distillation"]
    assert metrics["student"]["cosine"] > before["cosine"]
    assert 0.0 <= metrics["student"]["neighbour_overlap@10"] <= 1.0
    assert metrics["compression"] > 1.0
    report = (tmp_path / "run" / "report.md").read_text()
    assert "cosine to teacher" in report and "Agreement with the teacher" in report
    student = distill.load(tmp_path / "run" / "student")
    assert isinstance(student, SentenceEncoder) and student.config.num_hidden_layers == 2
    assert (tmp_path / "run" / "student" / "modules.json").is_file()


def test_a_saved_sentence_encoder_opens_in_sentence_transformers(tmp_path, make_bert, tokenizer):
    st = pytest.importorskip("sentence_transformers")
    import distill
    from distill.hf import SentenceEncoder, save_pretrained

    encoder = SentenceEncoder(make_bert(layers=2).bert)
    save_pretrained(encoder, tmp_path / "student", tokenizer)
    model = st.SentenceTransformer(str(tmp_path / "student"), device="cpu")
    ids = tokenizer(["good film", "bad plot"], return_tensors="pt")
    ours = encoder(**ids).detach()
    theirs = torch.as_tensor(model.encode(["good film", "bad plot"]))
    torch.testing.assert_close(theirs, ours, rtol=1e-4, atol=1e-5)
    reloaded = distill.load(tmp_path / "student")
    torch.testing.assert_close(reloaded(**ids), ours, rtol=1e-4, atol=1e-5)


def test_embedding_recipes_refuse_labels_and_baselines(tmp_path, make_bert, tokenizer,
                                                       reviews_texts):
    text = EMBEDDING_RECIPE.format(corpus=_corpus(tmp_path, *reviews_texts), teacher="x")
    with pytest.raises(RecipeError, match="learns from the text alone; remove \\[baseline\\]"):
        parse(text + "\n[baseline]\nenabled = true\n", tmp_path)
    with pytest.raises(RecipeError, match="distilled with \\[loss\\] kind = 'embedding'"):
        parse(text.replace('kind = "embedding"', 'kind = "kd"'), tmp_path)


def test_cli_evaluates_and_caches_a_hugging_face_model_on_text(tmp_path, make_bert, tokenizer,
                                                               reviews_texts, monkeypatch,
                                                               capsys):
    import distill.data
    from distill.cli import DATA_CHOICES, main
    from distill.data.rotten_tomatoes import load_rotten_tomatoes
    from distill.hf import save_pretrained

    assert sorted(DATA_CHOICES) == sorted([*distill.data.DATASETS, *distill.data.TEXT_DATASETS])
    corpus = _corpus(tmp_path, *reviews_texts)
    monkeypatch.setitem(distill.data.TEXT_DATASETS, "rotten-tomatoes",
                        lambda split: load_rotten_tomatoes(split, path=corpus))
    model_dir = save_pretrained(make_bert(layers=2), tmp_path / "model", tokenizer)
    assert main(["eval", str(model_dir), "--data", "rotten-tomatoes", "--max-length", "8",
                 "--repeats", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0.0 <= result["student"]["accuracy"] <= 1.0
    assert main(["cache", str(model_dir), "--data", "rotten-tomatoes", "--max-length", "8",
                 "--out", str(tmp_path / "cache"), "--top-k", "1", "--no-progress"]) == 0
    assert "top-1" in capsys.readouterr().out


def test_attention_transfer_picks_the_kernel_that_returns_attention_maps(hf_recipe, tmp_path):
    with_maps = hf_recipe.replace("[train]", "[loss.attention]\nweight = 1.0\n\n[train]")
    assert parse(with_maps, tmp_path).teacher.attention == "eager"
    sdpa = with_maps.replace('arch = "hf"\n', 'arch = "hf"\nattention = "sdpa"\n')
    with pytest.raises(RecipeError, match="does not return"):
        parse(sdpa, tmp_path)


PIPELINE = """
[[stages]]
kind = "prune"
ratio = 0.5

[[stages]]
kind = "distill"
epochs = 1

[[stages]]
kind = "quantize"
method = "qat"
epochs = 1
lr = 0.001
"""


@pytest.mark.parametrize("export", [False, True])
def test_a_hugging_face_pipeline_prunes_trains_for_int8_and_ships(hf_recipe, tmp_path,
                                                                   cache_dir, export):
    pytest.importorskip("onnxruntime")
    import distill

    text = hf_recipe + PIPELINE + ('[[stages]]\nkind = "export"\nint8 = "dynamic"\n'
                                   'trim_vocabulary = true\n' if export else "")
    metrics = run_recipe(parse(text, tmp_path), tmp_path / "run", progress=False)
    assert [s["name"] for s in metrics["stages"]] == (
        ["distill", "prune structured 50%", "distill 1 epochs"]
        + (["quantize qat"] if export else []))
    pruned = metrics["stages"][1]
    assert pruned["params"] < metrics["stages"][0]["params"]  # half the MLP neurons gone
    student = distill.load(tmp_path / "run" / "student")
    if export:  # the QAT-trained weights, int8 in ONNX Runtime, vocabulary trimmed
        assert type(student).__name__ == "OnnxModel"
        trimmed = metrics["pipeline"][-1]["export_check"]["trimmed_vocabulary"]
        assert trimmed["rows_after"] < trimmed["rows_before"]
    else:  # a quantized Hugging Face model, saved without pickle
        assert student.distill_quantization["kind"] == "dynamic-int8"
        assert student.distill_quantization["trained"] == "qat"
    assert metrics["student"]["accuracy"] >= 0.7


def test_an_export_can_trim_the_vocabulary_to_the_tokens_training_uses(hf_recipe, tmp_path,
                                                                        cache_dir):
    pytest.importorskip("onnxruntime")
    import distill

    text = hf_recipe + '[[stages]]\nkind = "export"\ntrim_vocabulary = true\n'
    metrics = run_recipe(parse(text, tmp_path), tmp_path / "run", progress=False)
    check = metrics["pipeline"][0]["export_check"]
    trimmed = check["trimmed_vocabulary"]
    # the tiny BERT has 32 rows; its 18-token tokenizer reaches at most 18 of them (+1 shared)
    assert trimmed["rows_before"] == 32 and trimmed["rows_after"] <= 19
    assert trimmed["parameters_after"] < trimmed["parameters_before"]
    # every test token was seen in training here: trimming changes no prediction
    assert trimmed["agreement_with_untrimmed"] == 1.0
    assert check["agreement"] >= 0.999  # the fp32 graph computes the trimmed model
    student = distill.load(tmp_path / "run" / "student")
    assert type(student).__name__ == "OnnxModel"
    assert metrics["student"]["accuracy"] == pytest.approx(metrics["stages"][0]["accuracy"])
