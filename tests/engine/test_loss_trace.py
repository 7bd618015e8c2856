"""The loss along an epoch: window means that a long one-epoch run (a language model's
recovery) can be read and plotted by, carried through a checkpoint inside the epoch."""

from __future__ import annotations

import json

import pytest
import torch

import distill
from distill.data.digits import load_digits
from distill.engine import resume
from distill.engine.callbacks import Callback
from distill.engine.loss_trace import POINTS, LossTrace


class Losses(Callback):
    def __init__(self):
        self.seen: list[float] = []

    def on_step_end(self, state) -> None:
        self.seen.append(state.loss)


class Crash(Callback):
    def on_step_end(self, state) -> None:
        if state.step == 10:
            raise KeyboardInterrupt


def _student():
    torch.manual_seed(1)
    return distill.build_mlp((1, 8, 8), 10, hidden=(16,))


def test_a_short_epochs_trace_is_every_steps_loss():
    train = load_digits("train")
    losses = Losses()
    result = distill.train_model(_student(), train, epochs=2, batch_size=128, lr=1e-2,
                                 progress=False, callbacks=[losses])
    steps = -(-len(train) // 128)
    traces = [h["loss_trace"] for h in result.history]
    assert [t["steps"] for t in traces] == [list(range(1, steps + 1))] * 2
    assert [t["of"] for t in traces] == [steps, steps]
    assert traces[0]["loss"] + traces[1]["loss"] == pytest.approx(losses.seen, rel=1e-12)


def test_a_long_epoch_keeps_window_means_and_a_short_last_window():
    trace = LossTrace.for_epoch(1003)  # 11 steps a window: 91 full windows and one of 2
    assert trace.every == 11
    losses = [float(i % 7) for i in range(1003)]
    for step, value in enumerate(losses, start=1):
        trace.add(step, value, 4)
    found = trace.record(1003, 1003)
    assert len(found["steps"]) == 92 <= POINTS
    assert found["steps"][:2] == [11, 22] and found["steps"][-1] == 1003
    assert found["loss"][0] == pytest.approx(sum(losses[:11]) / 11)
    assert found["loss"][-1] == pytest.approx(sum(losses[-2:]) / 2)


def test_a_checkpoint_with_a_damaged_loss_trace_is_refused(tmp_path):
    import safetensors.torch

    train = load_digits("train")
    settings = dict(epochs=1, batch_size=64, lr=1e-2, checkpoint_steps=8, progress=False)
    with pytest.raises(KeyboardInterrupt):
        distill.train_model(_student(), train, checkpoint_dir=tmp_path, callbacks=[Crash()],
                            **settings)
    tensors, meta = resume.read(tmp_path)
    kept = meta["training"]["within_epoch"]["trace"]
    assert kept["steps"] == list(range(1, 9))  # the windows before the checkpoint are in it
    kept["steps"][3] = 99  # a step the run had not reached
    safetensors.torch.save_file(tensors, str(tmp_path / resume.CHECKPOINT),
                                metadata={resume.META: json.dumps(meta)})
    with pytest.raises(resume.CheckpointError, match="loss trace does not fit this run"):
        distill.train_model(_student(), train, checkpoint_dir=tmp_path, resume=True, **settings)
