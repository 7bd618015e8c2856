"""The training loop: determinism, teacher handling, errors, checkpoints."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

import distill
from distill.data import load_digits
from distill.engine import NonFiniteLossError, TrainConfig, fit, resume
from distill.losses import DistillationLoss, HardLabelLoss, KDLoss


@pytest.fixture(scope="module")
def digits():
    return load_digits("train"), load_digits("test")


def _student(seed: int = 0, hidden=(32,)) -> nn.Module:
    torch.manual_seed(seed)
    return distill.build_mlp((1, 8, 8), 10, hidden=hidden)


@pytest.fixture(scope="module")
def teacher(digits):
    train, test = digits
    torch.manual_seed(0)
    model = distill.build_cnn((1, 8, 8), 10, channels=(16, 32), hidden=64)
    distill.train_model(model, train, epochs=8, lr=3e-3, progress=False)
    return model.eval()


def _weights(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.state_dict().values()]


def test_same_seed_same_numbers_different_seed_different(digits, teacher):
    train, test = digits
    runs = [
        distill.distill(teacher, _student(), train, eval=test, epochs=2, seed=s, progress=False)
        for s in (1, 1, 2)
    ]
    a, b, c = (_weights(r.student) for r in runs)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))
    assert runs[0].metrics["accuracy"] == runs[1].metrics["accuracy"]


def test_distillation_learns_and_reports_metrics(digits, teacher):
    train, test = digits
    result = distill.distill(
        teacher, _student(), train, eval=test, epochs=15, lr=1e-2,
        loss=KDLoss(temperature=2.0, alpha=0.5), progress=False,
    )
    m = result.metrics
    assert m["accuracy"] > 0.85
    assert m["agreement"] > 0.85
    assert 0 <= m["kl_to_teacher"] < 1.0
    assert m["params"] == sum(p.numel() for p in result.student.parameters())
    assert len(result.history) == 15
    assert result.history[-1]["eval_accuracy"] == m["accuracy"]
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_teacher_stays_in_eval_mode_untouched_and_without_gradients(digits):
    train, _ = digits
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.Dropout(0.5), nn.Linear(64, 10))
    teacher.train()
    before = _weights(teacher)
    seen_modes = []
    teacher.register_forward_hook(lambda m, i, o: seen_modes.append((m.training, o.requires_grad)))
    distill.distill(teacher, _student(), train, epochs=1, progress=False)
    assert seen_modes and all(mode == (False, False) for mode in seen_modes)
    assert all(torch.equal(x, y) for x, y in zip(before, _weights(teacher), strict=True))
    assert all(p.grad is None for p in teacher.parameters())


def test_unlabeled_data_learns_from_the_teacher_alone(digits, teacher):
    train, test = digits
    unlabeled = TensorDataset(train.inputs)  # x alone
    result = distill.distill(teacher, _student(), unlabeled, eval=test, epochs=15, lr=1e-2,
                             progress=False)
    assert result.metrics["accuracy"] > 0.8


class DictData(Dataset):
    def __init__(self, base):
        self.base = base

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        x, y = self.base[i]
        return {"image": x, "label": y}


def test_dict_samples_and_user_dataloaders(digits, teacher):
    train, test = digits
    loader = DataLoader(DictData(train), batch_size=32, shuffle=True)
    result = distill.distill(teacher, _student(), loader, eval=DictData(test), epochs=3,
                             progress=False)
    assert result.metrics["accuracy"] > 0.5


def test_mismatched_output_sizes_are_refused_clearly(digits, teacher):
    train, _ = digits
    student = distill.build_mlp((1, 8, 8), 7, hidden=(8,))
    with pytest.raises(ValueError, match="teacher predicts 10 classes and the student 7"):
        distill.distill(teacher, student, train, epochs=1, progress=False)


def test_empty_dataset_is_refused(teacher):
    empty = TensorDataset(torch.zeros(0, 1, 8, 8), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="empty"):
        distill.distill(teacher, _student(), empty, progress=False)


def test_labels_out_of_range_name_the_value(digits, teacher):
    train, _ = digits
    bad = TensorDataset(train.inputs[:64], torch.full((64,), 12))
    with pytest.raises(ValueError, match="label 12 is out of range for 10 classes"):
        distill.distill(teacher, _student(), bad, epochs=1, progress=False)


def test_hard_label_training_needs_no_teacher_and_kd_needs_one(digits):
    train, _ = digits
    with pytest.raises(ValueError, match="needs a teacher"):
        fit(_student(), train, loss=KDLoss(), config=TrainConfig(progress=False))
    result = distill.train_model(_student(), train, epochs=1, progress=False)
    assert result.metrics["params"] > 0


class ExplodeAt(DistillationLoss):
    """Cross-entropy that turns NaN at a chosen global step."""

    needs_teacher = False

    def __init__(self, step: int):
        super().__init__()
        self.step, self.calls = step, 0
        self.inner = HardLabelLoss()

    def forward(self, student_logits, teacher_logits=None, labels=None):
        self.calls += 1
        value = self.inner(student_logits, None, labels)
        return value * float("nan") if self.calls == self.step else value


def test_non_finite_loss_stops_names_the_step_and_keeps_last_good_checkpoint(digits, tmp_path):
    train, _ = digits
    student = _student()
    steps_per_epoch = -(-len(train) // 64)
    explode = steps_per_epoch + 5  # the 5th step of epoch 2
    config = TrainConfig(epochs=3, batch_size=64, progress=False)
    with pytest.raises(NonFiniteLossError, match=r"epoch 2, step 5") as info:
        fit(student, train, loss=ExplodeAt(explode), config=config, checkpoint_dir=tmp_path)
    assert info.value.epoch == 2 and info.value.step == 5
    tensors, meta = resume.read(tmp_path)
    saved = resume.model_weights(tensors)
    for name, value in student.state_dict().items():
        assert torch.isfinite(value).all()
        assert torch.equal(value, saved[name])  # restored to the end of epoch 1
    assert meta["epoch"] == 1


def test_non_finite_loss_without_checkpoint_dir_restores_from_memory(digits):
    train, _ = digits
    student = _student()
    initial = _weights(student)
    with pytest.raises(NonFiniteLossError, match="epoch 1, step 3"):
        fit(student, train, loss=ExplodeAt(3), config=TrainConfig(epochs=2, progress=False))
    assert all(torch.equal(x, y) for x, y in zip(initial, _weights(student), strict=True))


def test_nan_teacher_outputs_are_caught(digits):
    train, _ = digits

    class NaNTeacher(nn.Module):
        def forward(self, x):
            return torch.full((x.shape[0], 10), float("nan"))

    with pytest.raises(ValueError, match="teacher produced NaN"):
        distill.distill(NaNTeacher(), _student(), train, epochs=1, progress=False)


def test_augmentation_is_shared_by_teacher_and_student(digits):
    train, _ = digits
    seen = {"teacher": [], "student": []}

    class Recorder(nn.Module):
        def __init__(self, role):
            super().__init__()
            self.role = role
            self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))

        def forward(self, x):
            seen[self.role].append(x.detach().clone())
            return self.net(x)

    distill.distill(Recorder("teacher"), Recorder("student"), train, epochs=1,
                    augment="flip-shift", progress=False)
    assert len(seen["teacher"]) == len(seen["student"]) > 0
    for t, s in zip(seen["teacher"], seen["student"], strict=True):
        assert torch.equal(t, s)
    originals = {tuple(x.flatten().tolist()) for x in train.inputs}
    changed = sum(tuple(x.flatten().tolist()) not in originals for x in seen["student"][0])
    assert changed > 0  # the views really are augmented


def test_learning_rate_follows_warmup_then_cosine(digits):
    train, _ = digits
    lrs = []

    class LR(distill.Callback):
        def on_step_end(self, state):
            lrs.append(state.lr)

    distill.train_model(_student(), train, epochs=2, lr=0.01, warmup_ratio=0.25,
                        callbacks=[LR()], progress=False)
    peak = max(lrs)
    assert abs(peak - 0.01) < 1e-9
    assert lrs.index(peak) < len(lrs) // 3
    assert lrs[-1] < 0.001


def test_conv_models_train_channels_last_and_come_back_contiguous(digits, teacher):
    train, _ = digits
    torch.manual_seed(0)
    student = distill.build_cnn((1, 8, 8), 10, channels=(4, 8))
    second_conv = [m for m in student.modules() if isinstance(m, nn.Conv2d)][1]
    layouts = []  # (N, 4, H, W) activations: unambiguous, unlike 1-channel images
    second_conv.register_forward_pre_hook(
        lambda m, args: layouts.append(args[0].is_contiguous(memory_format=torch.channels_last))
    )
    distill.distill(teacher, student, train, epochs=1, progress=False)
    assert layouts and all(layouts)  # trained in channels-last layout
    for model in (student, teacher):
        for p in model.parameters():
            assert p.is_contiguous()  # handed back in the default layout
    layouts.clear()
    fit(student, train, loss=KDLoss(), teacher=teacher,
        config=TrainConfig(channels_last=False, progress=False))
    assert layouts and not any(layouts)
