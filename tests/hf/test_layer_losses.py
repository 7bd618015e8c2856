from __future__ import annotations

import pytest
import torch

import distill
from distill import AttentionLoss, CombinedLoss, HiddenStateLoss, KDLoss
from distill.features import FeatureTap
from distill.hf import keep_layers, scratch_student


def _run(student, teacher, ids, mask=None):
    kwargs = {"attention_mask": mask} if mask is not None else {}
    with torch.no_grad():
        teacher(input_ids=ids, **kwargs)
    return student(input_ids=ids, **kwargs).logits


def test_hidden_state_loss_is_zero_for_an_exact_copy_and_positive_otherwise(make_bert):
    teacher = make_bert(layers=2)
    same = keep_layers(teacher, layers=[0, 1])
    ids = torch.randint(4, 32, (3, 6))
    for kind in ("cosine", "mse"):
        loss = HiddenStateLoss(same, teacher, {0: 0, 1: 1}, kind=kind)
        assert loss(_run(same, teacher, ids)).item() == pytest.approx(0.0, abs=1e-6)
        loss.release()
    other = make_bert(layers=2, seed=1)
    loss = HiddenStateLoss(other, teacher, {0: 0, 1: 1})
    assert loss(_run(other, teacher, ids)).item() > 0.01


def test_default_mapping_spreads_student_blocks_over_the_teacher(make_bert):
    teacher = make_bert(layers=4)
    loss = HiddenStateLoss(keep_layers(teacher), teacher)
    assert loss.pairs == [("bert.encoder.layer.0", "bert.encoder.layer.1"),
                          ("bert.encoder.layer.1", "bert.encoder.layer.3")]


def test_padding_positions_do_not_count(make_bert):
    teacher, student = make_bert(layers=2), make_bert(layers=2, seed=1)
    loss = HiddenStateLoss(student, teacher, {0: 0, 1: 1}, kind="mse")
    ids = torch.randint(4, 32, (2, 6))
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    first = loss(_run(student, teacher, ids, mask)).item()
    changed = ids.clone()
    changed[0, 4:] = 5  # only padded tokens change (attention ignores them as keys, too)
    second = loss(_run(student, teacher, changed, mask)).item()
    assert first == pytest.approx(second, rel=1e-5)


def test_projection_maps_a_narrower_student_and_is_trained_not_saved(make_bert, reviews, tmp_path):
    train, _ = reviews
    teacher = make_bert(layers=4, hidden=16)
    student = scratch_student(teacher, num_hidden_layers=2, hidden_size=8, intermediate_size=16,
                              num_attention_heads=2)
    hidden = HiddenStateLoss(student, teacher, kind="mse")
    assert len(hidden.projections) == 2 and hidden.projections[0].weight.shape == (16, 8)
    before = hidden.projections[0].weight.detach().clone()
    loss = CombinedLoss({"kd": KDLoss(2.0, 0.5), "hidden": (hidden, 1.0)})
    distill.distill(teacher, student, train, loss=loss, epochs=1, batch_size=16, lr=1e-2,
                    progress=False)
    assert not torch.equal(before, hidden.projections[0].weight)
    assert set(loss.last) == {"kd", "hidden"}
    folder = distill.save(student, tmp_path / "student")
    from safetensors.torch import load_file

    saved = load_file(str(folder / "model.safetensors"))
    assert saved and not any("projection" in k for k in saved)


def test_layer_losses_lower_the_hidden_state_gap_through_the_engine(make_bert, reviews):
    train, _ = reviews
    teacher = make_bert(layers=4)
    student = make_bert(layers=2, seed=3)
    probe = HiddenStateLoss(student, teacher, {0: 1, 1: 3})
    ids = train.encodings["input_ids"][:16]
    gap_before = probe(_run(student, teacher, ids)).item()
    loss = HiddenStateLoss(student, teacher, {0: 1, 1: 3})
    distill.distill(teacher, student, train.unlabeled(), loss=loss, epochs=4, batch_size=16,
                    lr=1e-2, progress=False)
    gap_after = probe(_run(student.eval(), teacher, ids)).item()
    assert gap_after < 0.5 * gap_before


def test_layer_losses_refuse_stale_or_missing_features(make_bert):
    teacher, student = make_bert(layers=2), make_bert(layers=2, seed=1)
    loss = HiddenStateLoss(student, teacher, {0: 0})
    ids = torch.randint(4, 32, (2, 5))
    loss(_run(student, teacher, ids))
    with pytest.raises(RuntimeError, match="live teacher module"):
        loss(student(input_ids=ids).logits)  # the teacher did not run on this batch


def test_feature_tap_names_a_missing_module_and_suggests_one(make_bert):
    with pytest.raises(KeyError, match="did you mean 'bert.encoder.layer.1'"):
        FeatureTap(make_bert(layers=2), ["bert.encoder.layer1"])


def test_attention_loss_needs_eager_attention_and_compares_maps(make_bert):
    teacher = make_bert(layers=2, attn_implementation="sdpa")
    student = make_bert(layers=2, seed=1, attn_implementation="sdpa")
    with pytest.raises(ValueError, match="attn_implementation='eager'"):
        AttentionLoss(student, teacher)
    teacher = make_bert(layers=2, attn_implementation="eager")
    with torch.no_grad():  # sharpen the teacher's attention (random init is near uniform)
        for block in teacher.bert.encoder.layer:
            block.attention.self.query.weight.mul_(30)
            block.attention.self.key.weight.mul_(30)
    same = keep_layers(teacher, [0, 1])
    other = make_bert(layers=2, seed=1, attn_implementation="eager")
    ids = torch.randint(4, 32, (2, 6))
    assert AttentionLoss(same, teacher)(_run(same, teacher, ids)).item() == pytest.approx(
        0.0, abs=1e-6)
    assert AttentionLoss(other, teacher)(_run(other, teacher, ids)).item() > 0.05


def test_combined_loss_weights_terms_and_checks_them():
    s, t = torch.randn(4, 3), torch.randn(4, 3)
    labels = torch.tensor([0, 1, 2, 0])
    kd, hard = KDLoss(2.0, 1.0), distill.HardLabelLoss()
    combined = CombinedLoss({"kd": (kd, 0.5), "hard": hard})
    expected = 0.5 * kd(s, t, labels) + hard(s, None, labels)
    torch.testing.assert_close(combined(s, t, labels), expected)
    assert combined.needs_teacher
    assert not CombinedLoss({"hard": hard}).needs_teacher
    with pytest.raises(TypeError, match="not a DistillationLoss"):
        CombinedLoss({"x": torch.nn.MSELoss()})
    with pytest.raises(ValueError, match="weights must be >= 0"):
        CombinedLoss({"kd": (kd, -1.0)})
