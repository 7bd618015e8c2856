"""A run stopped at any point continues from its last complete epoch to the very same result."""

from __future__ import annotations

import json
import os

import pytest
import torch

import distill
from distill.data.digits import load_digits
from distill.engine import resume
from distill.engine.callbacks import Callback


class Crash(Callback):
    def __init__(self, at_epoch: int, at_step: int = 5):
        self.at_epoch, self.at_step = at_epoch, at_step

    def on_step_end(self, state) -> None:
        if state.epoch == self.at_epoch and state.step == self.at_step:
            raise KeyboardInterrupt  # as if killed in the middle of this epoch


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(0)
    model = distill.build_mlp((1, 8, 8), 10, hidden=(64,))
    distill.train_model(model, load_digits("train"), epochs=2, batch_size=64, progress=False)
    return model.eval()


def _student():
    torch.manual_seed(1)
    return distill.build_mlp((1, 8, 8), 10, hidden=(32,), dropout=0.2)  # dropout: RNG matters


SETTINGS = dict(epochs=4, batch_size=64, lr=1e-2, augment="flip-shift", progress=False)


def test_an_interrupted_run_resumes_to_the_uninterrupted_result(teacher, tmp_path):
    train, test = load_digits("train"), load_digits("test")
    whole = distill.distill(teacher, _student(), train, eval=test,
                            checkpoint_dir=tmp_path / "whole", **SETTINGS)
    with pytest.raises(KeyboardInterrupt):
        distill.distill(teacher, _student(), train, eval=test, checkpoint_dir=tmp_path / "cut",
                        callbacks=[Crash(at_epoch=2)], **SETTINGS)
    assert resume.read(tmp_path / "cut")[1]["epoch"] == 2
    resumed = distill.distill(teacher, _student(), train, eval=test, resume=True,
                              checkpoint_dir=tmp_path / "cut", **SETTINGS)
    for a, b in zip(whole.student.parameters(), resumed.student.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in whole.history]
    assert resumed.metrics["accuracy"] == whole.metrics["accuracy"]


@pytest.mark.parametrize("accumulate", [1, 2])
def test_a_run_stopped_inside_an_epoch_resumes_from_its_last_checkpoint_there(
        teacher, tmp_path, accumulate):
    """checkpoint_steps: an interruption loses at most that many batches, and the resumed run
    (the same batch order for the rest of the epoch, the same random state) ends exactly where
    the uninterrupted one does."""
    train, test = load_digits("train"), load_digits("test")
    settings = {**SETTINGS, "epochs": 2, "accumulate": accumulate, "checkpoint_steps": 4}
    whole = distill.distill(teacher, _student(), train, eval=test,
                            checkpoint_dir=tmp_path / "whole", **settings)
    with pytest.raises(KeyboardInterrupt):
        distill.distill(teacher, _student(), train, eval=test, checkpoint_dir=tmp_path / "cut",
                        callbacks=[Crash(at_epoch=1, at_step=10)], **settings)
    meta = resume.read(tmp_path / "cut")[1]
    assert (meta["epoch"], meta["training"]["within_epoch"]["step"]) == (1, 8)
    resumed = distill.distill(teacher, _student(), train, eval=test, resume=True,
                              checkpoint_dir=tmp_path / "cut", **settings)
    for a, b in zip(whole.student.parameters(), resumed.student.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in whole.history]
    # the loss along the epoch too: the windows before the checkpoint came back with it
    assert [h["loss_trace"] for h in resumed.history] == [h["loss_trace"] for h in whole.history]
    assert resume.read(tmp_path / "cut")[1]["training"].get("within_epoch") is None


def test_checkpoint_steps_must_fall_between_optimizer_steps(teacher):
    with pytest.raises(ValueError, match=r"checkpoint_steps \(3\) must be a multiple of "
                                         r"accumulate \(2\)"):
        distill.distill(teacher, _student(), load_digits("train"),
                        **{**SETTINGS, "accumulate": 2, "checkpoint_steps": 3})


def test_a_checkpoint_inside_an_epoch_of_other_data_is_refused(teacher, tmp_path):
    train = load_digits("train")
    settings = {**SETTINGS, "epochs": 1, "checkpoint_steps": 8}
    with pytest.raises(KeyboardInterrupt):
        distill.distill(teacher, _student(), train, checkpoint_dir=tmp_path / "c",
                        callbacks=[Crash(at_epoch=0, at_step=10)], **settings)
    with pytest.raises(resume.CheckpointError,
                       match="after batch 8 of an epoch, but this run has 4 batches"):
        distill.distill(teacher, _student(), train.subset(torch.arange(256)), resume=True,
                        checkpoint_dir=tmp_path / "c", **settings)


def test_a_checkpoint_inside_an_epoch_with_a_damaged_random_state_is_refused(teacher, tmp_path):
    import safetensors.torch

    settings = {**SETTINGS, "epochs": 1, "checkpoint_steps": 8}
    with pytest.raises(KeyboardInterrupt):
        distill.distill(teacher, _student(), load_digits("train"), checkpoint_dir=tmp_path / "c",
                        callbacks=[Crash(at_epoch=0, at_step=10)], **settings)
    path = tmp_path / "c" / resume.CHECKPOINT
    tensors, meta = resume.read(tmp_path / "c")
    tensors["rng.epoch_torch"] = torch.zeros(3, dtype=torch.uint8)
    safetensors.torch.save_file(tensors, str(path), metadata={resume.META: json.dumps(meta)})
    with pytest.raises(resume.CheckpointError, match="epoch's torch random state"):
        distill.distill(teacher, _student(), load_digits("train"), resume=True,
                        checkpoint_dir=tmp_path / "c", **settings)


def test_a_checkpoint_from_other_settings_is_refused(teacher, tmp_path):
    train = load_digits("train")
    distill.distill(teacher, _student(), train, checkpoint_dir=tmp_path / "c", **SETTINGS)
    with pytest.raises(ValueError, match="lr was 0.01, now 0.001"):
        distill.distill(teacher, _student(), train, checkpoint_dir=tmp_path / "c", resume=True,
                        **{**SETTINGS, "lr": 1e-3})
    with pytest.raises(ValueError, match="checkpoint_dir"):
        distill.distill(teacher, _student(), train, resume=True, **SETTINGS)


RECIPE = """
name = "killed"
[data]
dataset = "digits"
[teacher]
arch = "mlp"
hidden = [64]
[teacher.train]
epochs = 2
threads = 1
[student]
arch = "mlp"
hidden = [32]
dropout = 0.2
[train]
epochs = 8
batch_size = 16
threads = 1
augment = "flip-shift"
[evaluate]
latency_repeats = 3
batch_sizes = [1]
"""


def test_distill_run_killed_with_sigkill_resumes_to_the_same_metrics(tmp_path, killed_run):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE)
    env = {**os.environ, "DISTILL_CACHE": str(tmp_path / "cache")}
    whole, resumed = killed_run.whole_and_resumed(recipe, env, tmp_path, epochs=8)
    assert (killed_run.learning(resumed["history"]["student"])
            == killed_run.learning(whole["history"]["student"]))
    for key in ("accuracy", "agreement", "kl_to_teacher", "nll"):
        assert resumed["student"][key] == whole["student"][key], key
