"""ONNX export: checked against PyTorch, int8 in ONNX Runtime, opened again by distill.load."""

from __future__ import annotations

import json

import pytest
import torch

import distill
from distill.data.digits import load_digits
from distill.evaluate.size import size_on_disk
from distill.quantize import OnnxModel, to_onnx

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


@pytest.fixture(scope="module")
def trained():
    train, test = load_digits("train"), load_digits("test")
    torch.manual_seed(0)
    model = distill.build_cnn((1, 8, 8), 10, channels=(8, 16), hidden=64)
    distill.train_model(model, train, epochs=5, batch_size=64, lr=1e-2, progress=False)
    return model.eval(), test


def _accuracy(model, test):
    with torch.no_grad():
        return float((model(test.inputs).argmax(-1) == test.labels).float().mean())


def test_an_exported_model_runs_in_onnx_runtime_like_in_pytorch(trained, tmp_path):
    model, test = trained
    to_onnx(model, test.inputs[:2], tmp_path / "fp32")
    loaded = distill.load(tmp_path / "fp32")
    assert isinstance(loaded, OnnxModel)
    with torch.no_grad():  # another batch size than the example's: the batch is dynamic
        torch.testing.assert_close(loaded(test.inputs[:37]), model(test.inputs[:37]),
                                   rtol=1e-4, atol=1e-4)
    assert size_on_disk(loaded) == (tmp_path / "fp32" / "model.onnx").stat().st_size
    evaluated = distill.evaluate_models({"onnx": loaded}, test, batch_sizes=[1],
                                        latency_repeats=3)
    assert evaluated["onnx"]["accuracy"] == pytest.approx(_accuracy(model, test), abs=1e-3)
    # inputs that are not plain C-ordered CPU arrays are converted, not misread
    strided = test.inputs[:5].transpose(2, 3).contiguous().transpose(2, 3)
    assert not strided.is_contiguous()
    with torch.no_grad():
        expected = model(test.inputs[:5])
    torch.testing.assert_close(loaded(strided), expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(loaded(test.inputs[:5].clone().requires_grad_()), expected,
                               rtol=1e-4, atol=1e-4)


def test_int8_in_onnx_runtime_is_smaller_and_keeps_accuracy(tmp_path):
    train, test = load_digits("train"), load_digits("test")
    torch.manual_seed(0)
    model = distill.build_mlp((1, 8, 8), 10, hidden=(256, 128))
    distill.train_model(model, train, epochs=5, batch_size=64, lr=3e-3, progress=False)
    to_onnx(model, test.inputs[:2], tmp_path / "fp32")
    to_onnx(model, test.inputs[:2], tmp_path / "int8", int8=True)
    config = json.loads((tmp_path / "int8" / "config.json").read_text())
    assert config["int8"] and config["max_relative_diff_int8"] > config["max_relative_diff_fp32"]
    sizes = [(tmp_path / d / "model.onnx").stat().st_size for d in ("fp32", "int8")]
    assert sizes[1] < 0.3 * sizes[0]
    assert _accuracy(distill.load(tmp_path / "int8"), test) >= 0.98 * _accuracy(model, test)


def test_a_hugging_face_model_exports_with_named_token_inputs(make_tiny_bert, tmp_path):
    model = make_tiny_bert()
    ids = torch.randint(4, 30, (2, 7))
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    to_onnx(model, inputs, tmp_path / "bert")
    loaded = distill.load(tmp_path / "bert")
    longer = torch.randint(4, 30, (3, 11))  # other batch and sequence sizes
    feed = {"input_ids": longer, "attention_mask": torch.ones_like(longer)}
    with torch.no_grad():
        torch.testing.assert_close(loaded(**feed), model(**feed).logits, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="missing \\['attention_mask'\\]"):
        loaded(input_ids=longer)


@pytest.fixture
def make_tiny_bert():
    transformers = pytest.importorskip("transformers")

    def make():
        torch.manual_seed(0)
        config = transformers.BertConfig(vocab_size=32, hidden_size=16, num_hidden_layers=2,
                                         num_attention_heads=2, intermediate_size=32,
                                         max_position_embeddings=32, num_labels=2)
        return transformers.BertForSequenceClassification(config).eval()
    return make


def test_the_cli_evaluates_an_exported_model_against_its_source(trained, tmp_path, capsys):
    from distill.cli import main

    model, test = trained
    distill.save(model, tmp_path / "fp32")
    to_onnx(model, test.inputs[:2], tmp_path / "int8", int8=True)
    code = main(["eval", str(tmp_path / "int8"), "--data", "digits", "--teacher",
                 str(tmp_path / "fp32"), "--repeats", "3", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["student"]["agreement"] > 0.95 and result["compression"] is not None


def test_static_int8_in_onnx_runtime_calibrates_a_cnn(tmp_path):
    train, test = load_digits("train"), load_digits("test")
    torch.manual_seed(0)
    model = distill.build_cnn((1, 8, 8), 10, channels=(32, 64), hidden=128)
    distill.train_model(model, train, epochs=4, batch_size=64, lr=1e-2, progress=False)
    model.eval()
    with pytest.raises(ValueError, match="calibration=<data>"):
        to_onnx(model, test.inputs[:2], tmp_path / "nope", int8="static")
    assert not (tmp_path / "nope").exists()  # nothing half-written
    to_onnx(model, test.inputs[:2], tmp_path / "fp32")
    to_onnx(model, test.inputs[:2], tmp_path / "static", int8="static", calibration=train,
            calibration_batches=30)
    config = json.loads((tmp_path / "static" / "config.json").read_text())
    assert config["int8"] == "static"
    sizes = [(tmp_path / d / "model.onnx").stat().st_size for d in ("fp32", "static")]
    assert sizes[1] < 0.4 * sizes[0]
    # min/max activation ranges on a tiny 8x8 digits CNN keep ~97%; BENCHMARKS.md measures
    # the Fashion-MNIST students
    assert _accuracy(distill.load(tmp_path / "static"), test) >= 0.95 * _accuracy(model, test)


@pytest.mark.parametrize("int8", ["dynamic", "static"])
def test_int8_in_onnx_runtime_quantizes_a_transformer_with_a_dynamic_sequence(make_tiny_bert,
                                                                              tmp_path, int8):
    from distill.data import DatasetInfo
    from distill.hf import TokenizedText

    model = make_tiny_bert()
    torch.manual_seed(1)
    ids = torch.randint(4, 30, (64, 12))
    data = TokenizedText({"input_ids": ids, "attention_mask": torch.ones_like(ids)},
                         torch.randint(0, 2, (64,)), DatasetInfo("toy", (12,), 2))
    example = {k: v[:2] for k, v in data.encodings.items()}
    to_onnx(model, example, tmp_path / int8, int8=int8, calibration=data, calibration_batches=1)
    loaded = distill.load(tmp_path / int8)
    shorter = ids[:16, :9]  # another batch and sequence size than the example's
    feed = {"input_ids": shorter, "attention_mask": torch.ones_like(shorter)}
    with torch.no_grad():
        reference, quantized = model(**feed).logits, loaded(**feed)
    assert quantized.shape == reference.shape
    # int8 noise, not a different model: the error is small against the logits' own spread
    assert (quantized - reference).abs().mean() < 0.25 * reference.std()
