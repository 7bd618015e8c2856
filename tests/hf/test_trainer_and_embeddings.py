from __future__ import annotations

import pytest
import torch

import distill
from distill import CombinedLoss, HiddenStateLoss, KDLoss
from distill.evaluate import classification_metrics, predict
from distill.hf import (
    EmbeddingLoss,
    SentenceEncoder,
    embed,
    embedding_agreement,
    keep_layers,
    scratch_student,
)


def _accuracy(model, data) -> float:
    pred = predict(model, data)
    return classification_metrics(pred.logits, pred.labels)["accuracy"]


def test_engine_distils_a_bert_teacher_into_half_its_layers(make_bert, reviews):
    train, test = reviews
    teacher = make_bert(layers=4)
    distill.train_model(teacher, train, epochs=6, batch_size=16, lr=5e-3, progress=False)
    assert _accuracy(teacher, test) >= 0.9
    student = keep_layers(teacher)
    loss = CombinedLoss({"kd": KDLoss(2.0, 0.5), "hidden": HiddenStateLoss(student, teacher)})
    result = distill.distill(teacher, student, train, eval=test, loss=loss, epochs=2,
                             batch_size=16, lr=2e-3, progress=False)
    assert result.metrics["accuracy"] >= 0.9
    assert result.metrics["agreement"] >= 0.9


def test_distillation_trainer_trains_the_student_and_the_projections(make_bert, reviews,
                                                                      tmp_path):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    from distill.hf.trainer import DistillationTrainer

    train, _ = reviews
    teacher = make_bert(layers=4, hidden=16)
    student = scratch_student(teacher, num_hidden_layers=2, hidden_size=8, intermediate_size=16)
    hidden = HiddenStateLoss(student, teacher, kind="mse")
    loss = CombinedLoss({"kd": KDLoss(2.0, 0.5), "hidden": hidden})
    before_student = student.classifier.weight.detach().clone()
    before_projection = hidden.projections[0].weight.detach().clone()
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=3, per_device_train_batch_size=16,
        learning_rate=1e-2, report_to=[], save_strategy="no", use_cpu=True,
        disable_tqdm=True, logging_strategy="no",
    )
    trainer = DistillationTrainer(model=student, teacher=teacher, args=args, train_dataset=train,
                                  loss=loss)
    trainer.train()
    assert not torch.equal(before_student, student.classifier.weight)
    assert not torch.equal(before_projection, hidden.projections[0].weight)
    assert set(loss.last) == {"kd", "hidden"}
    assert all(p.grad is None or not p.requires_grad for p in teacher.parameters())
    trainer.save_model(str(tmp_path / "student"))
    reloaded = transformers.AutoModelForSequenceClassification.from_pretrained(
        str(tmp_path / "student"))
    assert sum(p.numel() for p in reloaded.parameters()) == sum(
        p.numel() for p in student.parameters())


def test_sentence_embedding_distillation_moves_the_student_towards_the_teacher(make_bert,
                                                                               reviews):
    train, test = reviews
    teacher = SentenceEncoder(make_bert(layers=2, hidden=16).bert)
    student = SentenceEncoder(scratch_student(make_bert(layers=2, hidden=16), hidden_size=8,
                                              intermediate_size=16).bert)
    loss = EmbeddingLoss("cosine", student_width=student.width, teacher_width=teacher.width)
    text = test.unlabeled()

    def cosine_after_projection() -> float:
        with torch.no_grad():
            projected = loss.projection(embed(student, text))
        return embedding_agreement(projected, embed(teacher, text), k=5)["cosine"]

    before = cosine_after_projection()
    distill.distill(teacher, student, train.unlabeled(), loss=loss, epochs=8, batch_size=16,
                    lr=1e-2, progress=False)
    after = cosine_after_projection()
    assert after > before + 0.05
    assert embed(student, text).shape == (len(text), 8)


def test_embedding_agreement_on_known_cases():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(50, 6, generator=g)
    same = embedding_agreement(a, a.clone(), k=5)
    assert same["cosine"] == pytest.approx(1.0) and same["neighbour_overlap@5"] == 1.0
    rotated = embedding_agreement(a, a @ torch.linalg.qr(torch.randn(6, 6, generator=g))[0], k=5)
    assert rotated["neighbour_overlap@5"] == pytest.approx(1.0)  # a rotation keeps neighbours
    unrelated = embedding_agreement(a, torch.randn(50, 4, generator=g), k=5)
    assert "cosine" not in unrelated and unrelated["neighbour_overlap@5"] < 0.4
    with pytest.raises(ValueError, match="more than 5 sentences"):
        embedding_agreement(a[:5], a[:5], k=5)


def test_embedding_loss_explains_a_width_mismatch():
    with pytest.raises(ValueError, match="student_width= and teacher_width="):
        EmbeddingLoss()(torch.randn(2, 4), torch.randn(2, 8))


def test_bf16_autocast_and_accumulation_with_layer_losses(make_bert, reviews):
    train, test = reviews
    teacher = make_bert(layers=4)
    distill.train_model(teacher, train, epochs=6, batch_size=16, lr=5e-3, progress=False)
    student = keep_layers(teacher)
    loss = CombinedLoss({"kd": KDLoss(2.0, 0.5), "hidden": HiddenStateLoss(student, teacher)})
    result = distill.distill(teacher, student, train, eval=test, loss=loss, epochs=2,
                             batch_size=8, accumulate=2, precision="bf16", lr=2e-3,
                             progress=False)
    assert all(p.dtype == torch.float32 for p in student.parameters())
    assert result.metrics["agreement"] >= 0.9
