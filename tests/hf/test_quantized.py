"""Quantized Hugging Face students: saved without pickle, one distill.load away, and trained
for int8 (dynamic quantization-aware distillation) though torch.fx cannot trace them."""

from __future__ import annotations

import json

import pytest
import torch

import distill
from distill.evaluate import classification_metrics, predict
from distill.evaluate.size import size_on_disk
from distill.quantize import (
    cast,
    convert_qat,
    prepare_qat,
    quantize_dynamic,
    quantize_weights,
    without_fake_quant,
)
from distill.quantize.qat import FakeQuantLinear


def _accuracy(model, data) -> float:
    pred = predict(model, data)
    return classification_metrics(pred.logits, pred.labels)["accuracy"]


@pytest.mark.parametrize("make", [
    lambda m: quantize_dynamic(m, skip=["classifier"]),
    lambda m: quantize_weights(m, bits=4, group_size=16, skip=["classifier"]),
    lambda m: cast(m, "bfloat16"),
])
def test_a_quantized_bert_saves_as_safetensors_and_loads_back_alike(make_bert, tmp_path, make):
    bert = make_bert(layers=2, hidden=32)
    quantized = make(bert)
    distill.save(quantized, tmp_path / "q")
    assert sorted(p.name for p in (tmp_path / "q").iterdir()) == ["config.json",
                                                                  "model.safetensors"]
    config = json.loads((tmp_path / "q" / "config.json").read_text())
    assert config["kwargs"]["model_class"] == "BertForSequenceClassification"
    loaded = distill.load(tmp_path / "q")
    assert type(loaded) is type(bert)
    ids = torch.randint(4, 30, (3, 9))
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=ids).logits, quantized(input_ids=ids).logits)
    assert size_on_disk(quantized) < 0.6 * size_on_disk(bert)
    distill.save(loaded, tmp_path / "again")  # a loaded one saves like the original
    assert (tmp_path / "again" / "model.safetensors").stat().st_size == (
        tmp_path / "q" / "model.safetensors").stat().st_size


def test_dynamic_quantization_aware_distillation_of_a_bert_student(make_bert, reviews, tmp_path):
    train, test = reviews
    teacher = make_bert(layers=2, hidden=32)
    distill.train_model(teacher, train, epochs=6, batch_size=16, lr=5e-3, progress=False)
    assert _accuracy(teacher, test) >= 0.9
    qat = prepare_qat(teacher, skip=["classifier"])  # a Hugging Face model: the dynamic kind
    fake = [n for n, m in qat.named_modules() if isinstance(m, FakeQuantLinear)]
    assert len(fake) == 2 * 6 + 1 and "classifier" not in fake  # 6 per block and the pooler
    before = qat.bert.pooler.dense.weight.detach().clone()
    distill.distill(teacher, qat, train, epochs=1, batch_size=16, lr=1e-3, progress=False,
                    loss=distill.KDLoss(2.0, 0.5))
    assert not torch.equal(before, qat.bert.pooler.dense.weight)  # gradients pass the rounding
    quantized = convert_qat(qat, teacher)
    assert quantized.distill_quantization["kind"] == "dynamic-int8"
    assert quantized.distill_quantization["trained"] == "qat"
    assert _accuracy(quantized, test) >= 0.97 * _accuracy(teacher, test)
    # the fake-quantized forward is what the int8 kernels compute, up to their rounding
    ids = test.encodings["input_ids"][:8]
    with torch.no_grad():
        int8, trained = quantized(input_ids=ids).logits, qat.eval()(input_ids=ids).logits
        fp32 = without_fake_quant(qat)(input_ids=ids).logits
    assert not any(isinstance(m, FakeQuantLinear) for m in without_fake_quant(qat).modules())
    assert (int8 - trained).abs().max() <= (int8 - fp32).abs().max() + 1e-6
    distill.save(quantized, tmp_path / "int8")
    with torch.no_grad():
        torch.testing.assert_close(distill.load(tmp_path / "int8")(input_ids=ids).logits, int8)


def test_qat_refuses_models_it_cannot_train_and_foreign_models_to_convert():
    with pytest.raises(ValueError, match="no Linear layers"):
        prepare_qat(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3)), kind="dynamic")
    with pytest.raises(ValueError, match="kind must be"):
        prepare_qat(torch.nn.Linear(2, 2), kind="int4")
    with pytest.raises(ValueError, match="made by prepare_qat"):
        convert_qat(torch.nn.Linear(2, 2))


def test_a_language_models_outlier_layers_stay_float_and_reload_so(make_llama, tmp_path):
    """Dynamic int8 of a llama model leaves its MLP down projections and output head in
    float32 (their inputs carry outliers one scale per tensor cannot hold); saved and loaded,
    the same layers are int8."""
    def is_float(model, name: str) -> bool:
        return type(model.get_submodule(name)) is torch.nn.Linear

    model = make_llama(layers=2)
    quantized = quantize_dynamic(model)
    assert is_float(quantized, "lm_head") and is_float(quantized, "model.layers.0.mlp.down_proj")
    assert not is_float(quantized, "model.layers.0.mlp.up_proj")  # int8
    assert quantized.distill_quantization["kept_float"] == ["mlp.down_proj", "lm_head"]
    assert not is_float(quantize_dynamic(model, keep_float=()), "lm_head")
    distill.save(quantized, tmp_path / "int8")
    loaded = distill.load(tmp_path / "int8")
    assert is_float(loaded, "model.layers.1.mlp.down_proj")
    assert not is_float(loaded, "model.layers.1.mlp.gate_proj")
    ids = torch.randint(0, 32, (1, 8))
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=ids).logits, quantized(input_ids=ids).logits)
