"""The one training loop: batch → teacher signal → student → loss → step.

Teachers, hard-label baselines and distilled students all train here; what differs is the loss
and whether a teacher signal is given.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from distill import atomic
from distill.batches import Batches, forward, to_device
from distill.engine.callbacks import Callback, FitState, ProgressBar
from distill.engine.config import TrainConfig, make_optimizer, make_scheduler
from distill.evaluate.metrics import classification_metrics
from distill.evaluate.predict import predict
from distill.losses.base import DistillationLoss
from distill.runtime import seed_everything, thread_count
from distill.teachers.online import as_teacher_signal


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the student was restored to its last good weights."""

    def __init__(self, message: str, *, epoch: int, step: int, checkpoint: Path | None):
        super().__init__(message)
        self.epoch, self.step, self.checkpoint = epoch, step, checkpoint


@dataclass
class FitResult:
    model: nn.Module
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    samples: int = 0


class _LastGood:
    """The student's last known-good weights: on disk when a folder is given, else in memory."""

    def __init__(self, model: nn.Module, folder: str | Path | None):
        self.model = model
        self.folder = Path(folder) if folder is not None else None
        self.epoch = 0
        self.state: dict[str, Tensor] | None = None
        self.save(epoch=0, info={})

    @property
    def path(self) -> Path | None:
        return None if self.folder is None else self.folder / "last.safetensors"

    def save(self, epoch: int, info: dict[str, Any]) -> None:
        self.epoch = epoch
        if self.folder is None:
            self.state = copy.deepcopy({k: v.detach() for k, v in self.model.state_dict().items()})
            return
        tensors = {k: v.detach().contiguous().cpu() for k, v in self.model.state_dict().items()}
        atomic.write_with(self.path, lambda p: safetensors.torch.save_file(tensors, str(p)))
        atomic.write_json(self.folder / "last.json", {"epoch": epoch, **info})

    def restore(self) -> None:
        if self.folder is None:
            assert self.state is not None
            self.model.load_state_dict(self.state)
        else:
            device = next(self.model.parameters()).device
            self.model.load_state_dict(safetensors.torch.load_file(str(self.path), str(device)))


def fit(
    model: nn.Module,
    train: Dataset | DataLoader,
    *,
    loss: DistillationLoss,
    teacher: Any = None,
    eval_data: Dataset | DataLoader | None = None,
    config: TrainConfig | None = None,
    callbacks: Sequence[Callback] = (),
    checkpoint_dir: str | Path | None = None,
    description: str = "train",
) -> FitResult:
    """Train ``model`` in place with ``loss``; evaluate on ``eval_data`` after every epoch."""
    config = config or TrainConfig()
    signal = as_teacher_signal(teacher)
    if loss.needs_teacher and signal is None:
        raise ValueError(f"{type(loss).__name__} needs a teacher, but none was given")
    if not loss.needs_teacher:
        signal = None  # a hard-label run never pays for teacher forwards
    device = torch.device(config.device)
    with thread_count(config.num_threads):
        seed_everything(config.seed)
        model.to(device)
        if signal is not None:
            signal.to(device)
        batches = Batches(train, config.batch_size, shuffle=True, seed=config.seed)
        steps_per_epoch = len(batches)
        optimizer = make_optimizer(model, config)
        scheduler = make_scheduler(optimizer, config, config.epochs * steps_per_epoch)
        state = FitState(model=model, epochs=config.epochs, steps_per_epoch=steps_per_epoch)
        hooks = [ProgressBar(description, config.progress), *callbacks]
        last_good = _LastGood(model, checkpoint_dir)
        eval_signal = None
        if signal is not None:
            evaluation = getattr(signal, "for_evaluation", None)
            eval_signal = evaluation() if evaluation is not None else signal
        teacher_eval_logits = None
        started = time.perf_counter()
        for hook in hooks:
            hook.on_fit_start(state)
        for epoch in range(config.epochs):
            state.epoch, state.step, state.epoch_samples = epoch, 0, 0
            state.epoch_started = time.perf_counter()
            model.train()
            for hook in hooks:
                hook.on_epoch_start(state)
            total_loss, total_n = 0.0, 0
            for batch in batches:
                inputs = to_device(batch.inputs, device)
                labels = to_device(batch.labels, device)
                if config.augment is not None:
                    if not isinstance(inputs, Tensor):
                        raise TypeError("augment= works on tensor inputs, not dict batches")
                    inputs = config.augment(inputs)
                teacher_logits = None
                if signal is not None:
                    teacher_logits = signal.logits(inputs, batch.indices)
                    if not bool(torch.isfinite(teacher_logits).all()):
                        raise ValueError(
                            f"the teacher produced NaN or Inf logits at epoch {epoch + 1}, "
                            f"step {state.step + 1}"
                        )
                value = loss(forward(model, inputs), teacher_logits, labels)
                loss_item = float(value.detach())
                if not math.isfinite(loss_item):
                    last_good.restore()
                    where = (
                        f"the checkpoint {last_good.path}" if last_good.path else "memory"
                    )
                    raise NonFiniteLossError(
                        f"{description}: the loss became {loss_item} at epoch {epoch + 1}, step "
                        f"{state.step + 1} (global step {state.global_step + 1}); training "
                        f"stopped and the student was restored to its weights after epoch "
                        f"{last_good.epoch} (from {where}). Lower the learning rate, clip "
                        "gradients (grad_clip) or check the data for NaN/Inf.",
                        epoch=epoch + 1,
                        step=state.step + 1,
                        checkpoint=last_good.path,
                    )
                optimizer.zero_grad(set_to_none=True)
                value.backward()
                if config.grad_clip:
                    nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                optimizer.step()
                scheduler.step()
                n = len(batch)
                total_loss += loss_item * n
                total_n += n
                state.step += 1
                state.global_step += 1
                state.samples += n
                state.epoch_samples += n
                state.loss = loss_item
                state.lr = optimizer.param_groups[0]["lr"]
                for hook in hooks:
                    hook.on_step_end(state)
            seconds = time.perf_counter() - state.epoch_started
            record: dict[str, Any] = {
                "epoch": epoch + 1,
                "train_loss": total_loss / max(1, total_n),
                "lr": state.lr,
                "seconds": seconds,
                "samples_per_s": total_n / max(seconds, 1e-9),
            }
            if eval_data is not None:
                student_pred = predict(model, eval_data, config.eval_batch_size, device)
                if eval_signal is not None and teacher_eval_logits is None:
                    teacher_eval_logits = predict(
                        eval_signal, eval_data, config.eval_batch_size, device
                    ).logits
                scores = classification_metrics(
                    student_pred.logits, student_pred.labels, teacher_eval_logits
                )
                record.update({f"eval_{k}": v for k, v in scores.items()})
            state.history.append(record)
            last_good.save(epoch + 1, record)
            for hook in hooks:
                hook.on_epoch_end(state)
        for hook in hooks:
            hook.on_fit_end(state)
        model.eval()
        return FitResult(model, state.history, time.perf_counter() - started, state.samples)
