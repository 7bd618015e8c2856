"""The one training loop: batch → teacher signal → student → loss → step.

Teachers, hard-label baselines and distilled students all train here; what differs is the loss
and whether a teacher signal is given.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from distill.batches import Batches, to_device
from distill.engine import distributed, resume
from distill.engine.callbacks import Callback, FitState, ProgressBar
from distill.engine.config import TrainConfig, autocast_dtype, make_optimizer, make_scheduler
from distill.engine.loss_trace import LossTrace
from distill.losses.base import DistillationLoss
from distill.runtime import seed_everything, thread_count
from distill.tasks import Task, resolve_task
from distill.teachers.online import OnlineTeacher, as_teacher_signal
from distill.teachers.targets import TopKTargets


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the student was restored to its last good weights."""

    def __init__(self, message: str, *, epoch: int, step: int, checkpoint: Path | None):
        super().__init__(message)
        self.epoch, self.step, self.checkpoint = epoch, step, checkpoint


def _has_conv2d(module: nn.Module | None) -> bool:
    return module is not None and any(isinstance(m, nn.Conv2d) for m in module.modules())


@contextmanager
def memory_format(modules: Sequence[nn.Module], enabled: bool):
    """Train convolutions in channels-last layout (1.6x faster on this CPU), hand back the usual.

    The models leave in the default contiguous layout, so saving and users' code see no change.
    """
    if not enabled:
        yield
        return
    for m in modules:
        m.to(memory_format=torch.channels_last)
    try:
        yield
    finally:
        for m in modules:
            m.to(memory_format=torch.contiguous_format)


@dataclass
class FitResult:
    model: nn.Module
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    samples: int = 0


class _LastGood:
    """The student's last known-good weights: a checkpoint file when a folder is given (with
    the training state that continues from it), else a copy in memory."""

    def __init__(self, model: nn.Module, folder: str | Path | None, initial: bool = True):
        self.model = model
        self.folder = Path(folder) if folder is not None else None
        self.epoch = self.step = 0  # epochs finished, batches of the next one done
        self.state: dict[str, Tensor] | None = None
        if initial:
            self.save(epoch=0, info={})

    @property
    def path(self) -> Path | None:
        return None if self.folder is None else self.folder / resume.CHECKPOINT

    def save(self, epoch: int, info: dict[str, Any], run: _Run | None = None,
             within: dict[str, Any] | None = None) -> None:
        """Keep the weights after ``epoch`` epochs (and ``within["step"]`` batches of the next);
        with ``run``, all it needs to continue."""
        self.epoch, self.step = epoch, within["step"] if within else 0
        if self.folder is None:
            self.state = copy.deepcopy({k: v.detach() for k, v in self.model.state_dict().items()})
            return
        training = resume.training_state(run, within) if run is not None else None
        resume.save(self.folder, self.model, epoch, info, training)

    def restore(self) -> None:
        if self.folder is None:
            assert self.state is not None
            self.model.load_state_dict(self.state)
            return
        device = next(self.model.parameters()).device
        found = resume.read(self.folder, device)
        if found is None:
            raise FileNotFoundError(f"the checkpoint {self.path} is gone")
        resume.load_weights(self.model, found[0], self.path)


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
    task: str | Task | None = None,
) -> FitResult:
    """Train ``model`` in place with ``loss``; evaluate on ``eval_data`` after every epoch, as
    ``task`` evaluates (default: what the data declares, else classification)."""
    config = config or TrainConfig()
    task = resolve_task(task, eval_data, train)
    signal = as_teacher_signal(teacher)
    if loss.needs_teacher and signal is None:
        raise ValueError(f"{type(loss).__name__} needs a teacher, but none was given")
    if not loss.needs_teacher:
        signal = None  # a hard-label run never pays for teacher forwards
    teacher_module = getattr(signal, "module", None)
    channels_last = config.channels_last
    if channels_last is None:  # not for a sharded copy: its parameters are FSDP's to lay out
        channels_last = config.distributed != "fsdp" and (
            _has_conv2d(model) or _has_conv2d(teacher_module))
    layout = [m for m in (model, teacher_module) if m is not None]
    with thread_count(config.num_threads), memory_format(layout, channels_last):
        seed_everything(config.seed)
        run = _Run(model, train, loss, signal, config, callbacks, checkpoint_dir, description,
                   channels_last, task)
        return run.fit(eval_data)


class _Run:
    """One call of :func:`fit`: the state a training run carries between its steps."""

    def __init__(self, model, train, loss, signal, config: TrainConfig, callbacks,
                 checkpoint_dir, description: str, channels_last: bool, task: Task):
        self.model, self.loss, self.signal, self.config = model, loss, signal, config
        self.description, self.channels_last = description, channels_last
        self.device = torch.device(config.device)
        self.augment = config.augmentation()
        model.to(self.device)
        loss.to(self.device)
        if config.on_policy is not None and not isinstance(signal, OnlineTeacher):
            raise ValueError(
                "on-policy batches are new text that only a live teacher module can score; "
                f"got {type(signal).__name__ if signal is not None else 'no teacher'}"
            )
        loss.check_models(model, getattr(signal, "module", None))
        if signal is not None:
            check_data = getattr(signal, "check_data", None)
            if check_data is not None:
                check_data(train)  # e.g. a cache built on other data: refuse before training
            signal.to(self.device)
        self.group = distributed.join(config.device)  # None: this process trains alone
        writes = self.group is None or self.group.main  # one process writes checkpoints
        self.batches = Batches(train, config.batch_size, shuffle=True, seed=config.seed,
                               shard=self.group.shard if self.group else None)
        self.sharded = self.group is not None and config.distributed == "fsdp"
        if self.sharded:
            if config.resume:
                raise ValueError("resume=True is not supported with distributed='fsdp' yet")
            self.trained = distributed.sharded_copy(model)
        else:
            self.trained = distributed.wrap(model, config.device) if self.group else model
        # (batch size, samples per epoch); a user's DataLoader may sample its dataset anyhow
        self.batch_shape = ((train.batch_size or 1, None) if isinstance(train, DataLoader)
                            else (config.batch_size, len(train)))
        steps_per_epoch = len(self.batches)
        self.optimizer = make_optimizer(self.trained if self.sharded else model, config,
                                        extra=loss)
        updates = -(-steps_per_epoch // config.accumulate)  # optimizer steps per epoch
        self.scheduler = make_scheduler(self.optimizer, config, config.epochs * updates)
        self.autocast = autocast_dtype(config)
        self.state = FitState(model=model, epochs=config.epochs, steps_per_epoch=steps_per_epoch)
        self.hooks = [ProgressBar(description, config.progress if writes else False),
                      *callbacks]
        if isinstance(signal, Callback) and signal not in self.hooks:
            self.hooks.append(signal)  # a teacher that follows training (e.g. an EMA teacher)
        self.start_epoch = 0
        self.within: dict[str, Any] | None = None  # where inside an epoch a checkpoint stopped
        self.epoch_rng: tuple[Tensor, Tensor | None] | None = None  # the epoch's start states
        if config.resume:
            if checkpoint_dir is None:
                raise ValueError("resume=True continues from checkpoint_dir: give one")
            self.start_epoch = resume.load(Path(checkpoint_dir), self)
        self.last_good = _LastGood(model, checkpoint_dir if writes else None,
                                   initial=self.start_epoch == 0 and self.within is None)
        self.last_good.epoch = self.start_epoch
        self.last_good.step = self.within["step"] if self.within else 0
        # checkpoints inside an epoch: not for a sharded model (its resume is per epoch only)
        self.checkpoint_steps = (config.checkpoint_steps if self.last_good.folder is not None
                                 and not self.sharded else None)
        evaluation = getattr(signal, "for_evaluation", None)
        self.eval_signal = evaluation() if evaluation is not None else signal
        self.task = task
        self.checked = False  # the first step checks that model and data fit
        self.train_data = train
        self.eval_memo: dict[str, Any] = {}  # e.g. a fixed teacher's evaluation outputs

    def fit(self, eval_data) -> FitResult:
        started = time.perf_counter()
        self._call("on_fit_start")
        for epoch in range(self.start_epoch, self.config.epochs):
            record = self._train_epoch(epoch)
            if self.sharded:  # the plain model gets the epoch's weights, to evaluate and save
                distributed.copy_back(self.trained, self.model)
            if eval_data is not None:
                record.update(self._evaluate(eval_data))
            self.state.history.append(record)
            # one file: the weights and, unsharded, the state that continues from them
            self.last_good.save(epoch + 1, record, run=None if self.sharded else self)
            self._call("on_epoch_end")
        self._call("on_fit_end")
        self.model.eval()
        return FitResult(self.model, self.state.history, time.perf_counter() - started,
                         self.state.samples)

    def _call(self, hook: str) -> None:
        for h in self.hooks:
            getattr(h, hook)(self.state)

    def _inputs(self, batch) -> Any:
        inputs = to_device(batch.inputs, self.device)
        if self.augment is not None:
            if not isinstance(inputs, Tensor):
                raise TypeError("augment= works on tensor inputs, not dict batches")
            inputs = self.augment(inputs)  # once: teacher and student see this view
        if self.channels_last and isinstance(inputs, Tensor) and inputs.dim() == 4:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        return inputs

    def _epoch_batches(self) -> tuple[Any, dict[str, Any] | None]:
        """The epoch's batches, from where a checkpoint inside it stopped when resuming: the
        random states the epoch began with give the same order, the batches it had trained on
        are passed over, and the random state is then the one it stopped with."""
        within, self.within = self.within, None
        generator = self.batches.generator
        if within is not None:
            torch.set_rng_state(within["torch"])
            if generator is not None and within["data_order"] is not None:
                generator.set_state(within["data_order"])
        self.epoch_rng = (torch.get_rng_state(),
                          generator.get_state() if generator is not None else None)
        batches = iter(self.batches)
        if within is not None:
            for _ in range(within["step"]):
                next(batches)
            torch.set_rng_state(within["now"])
        return batches, within

    def _train_epoch(self, epoch: int) -> dict[str, Any]:
        state = self.state
        batches, within = self._epoch_batches()
        state.epoch, state.step, state.epoch_samples = epoch, within["step"] if within else 0, 0
        state.epoch_started = time.perf_counter()
        self.trained.train()
        self._call("on_epoch_start")
        total_loss, total_n = (within["loss_sum"], within["loss_samples"]) if within else (0.0, 0)
        trace = within["trace"] if within else LossTrace.for_epoch(len(self.batches))
        accumulate = self.config.accumulate
        for batch in batches:
            inputs = self._inputs(batch)
            labels = to_device(batch.labels, self.device)
            indices = batch.indices
            if self.config.on_policy is not None:
                rolled = self.config.on_policy.maybe_rollout(self.model, inputs, labels)
                if rolled is not None:  # the student's own text: no stored row describes it
                    inputs, labels, indices = rolled[0], rolled[1], None
            teacher_logits = self._teacher_logits(inputs, indices)
            with self._precision(), self._first_step_errors(inputs, labels):
                outputs = self.loss.outputs(self.trained, inputs)
                if isinstance(outputs, Tensor) and outputs.is_floating_point():
                    outputs = outputs.float()  # softmax over the classes in fp32
                value = self.loss(outputs, teacher_logits, labels).float()
                if not self.checked:  # the loss checked this batch; this, every label
                    self._check_labels(outputs, labels)
            self.checked = True
            loss_item = float(value.detach())
            if not math.isfinite(loss_item):
                self._stop_non_finite(loss_item)
            if state.step % accumulate == 0:
                self.optimizer.zero_grad(set_to_none=True)
            # each micro-batch weighs its share of the update's samples: the gradient of the
            # mean loss over all of them, as one big batch would give
            world = self.group.world if self.group else 1  # DDP averages over processes
            scale = (1.0 if accumulate == 1
                     else len(batch) * world / self._group_size(state.step))
            (value * scale).backward()
            if (state.step + 1) % accumulate == 0 or state.step + 1 == len(self.batches):
                self._update()
            n = len(batch)
            total_loss, total_n = total_loss + loss_item * n, total_n + n
            state.step += 1
            trace.add(state.step, loss_item, n)
            state.global_step += 1
            state.samples += n
            state.epoch_samples += n
            state.loss = loss_item
            state.lr = self.optimizer.param_groups[0]["lr"]
            self._call("on_step_end")
            every = self.checkpoint_steps
            if every and state.step % every == 0 and state.step < len(self.batches):
                self.last_good.save(epoch, {"epoch": epoch + 1, "step": state.step}, run=self,
                                    within={"step": state.step, "loss_sum": total_loss,
                                            "loss_samples": total_n, "trace": trace.to_json()})
        seconds = time.perf_counter() - state.epoch_started
        return {
            "epoch": epoch + 1,
            "train_loss": total_loss / max(1, total_n),
            "lr": state.lr,
            "seconds": seconds,  # of this process: a resumed epoch counts from its restart
            "samples_per_s": state.epoch_samples / max(seconds, 1e-9),
            "loss_trace": trace.record(state.step, len(self.batches)),
        }

    @contextmanager
    def _first_step_errors(self, inputs: Any, labels: Tensor | None):
        """The run's first step says in plain words why the model and the data do not fit
        (torch's own message, e.g. a matrix-shape error, is kept at the end)."""
        if self.checked:
            yield
            return
        try:
            yield
        except (RuntimeError, IndexError) as err:
            shape = (tuple(inputs.shape) if isinstance(inputs, Tensor)
                     else {k: tuple(v.shape) for k, v in inputs.items()
                           if isinstance(v, Tensor)})
            raise ValueError(
                f"{self.description}: the first batch does not fit the model: inputs of shape "
                f"{shape}, labels of shape {tuple(labels.shape) if labels is not None else None}"
                f". Check that the model's input size and number of classes match the data "
                f"(and its preprocessing). torch said: {err}") from err

    def _check_labels(self, outputs: Any, labels: Tensor | None) -> None:
        """Every label of the training data names one of the model's outputs (classes or
        vocabulary entries); checked once, over the whole dataset when it exposes its labels."""
        if labels is None or not isinstance(outputs, Tensor) or outputs.dim() < 2:
            return
        if labels.is_floating_point() or labels.dtype == torch.bool:
            raise ValueError(f"{self.description}: labels must be integer class indices, got "
                             f"{labels.dtype}; map class names to 0..K-1 first (the data "
                             "formats in distill.data.load_data do)")
        every = getattr(self.train_data, "labels", None)
        known = every if isinstance(every, Tensor) and not every.is_floating_point() else labels
        known = known[known != -100]
        outputs_per_position = outputs.shape[-1]
        if known.numel() and (int(known.max()) >= outputs_per_position or int(known.min()) < 0):
            bad = int(known.max()) if int(known.max()) >= outputs_per_position else int(known.min())
            raise ValueError(
                f"{self.description}: the data has label {bad}, but the model predicts "
                f"{outputs_per_position} classes (0..{outputs_per_position - 1}); build it with "
                f"num_classes >= {int(known.max()) + 1}, or check the label mapping")

    def _group_size(self, step: int) -> int:
        """Samples in the accumulation group that batch ``step`` of an epoch belongs to (the
        last batch of an epoch may be short)."""
        k, total = self.config.accumulate, len(self.batches)
        first = step - step % k
        last = min(first + k, total)  # batches [first, last)
        size, samples = self.batch_shape
        if samples is None or last < total:
            return (last - first) * size
        return samples - first * size

    def _update(self) -> None:
        if self.config.grad_clip:
            trained = self.trained if self.sharded else self.model
            nn.utils.clip_grad_norm_(trained.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.scheduler.step()

    def _precision(self):
        """bf16 autocast for the student's forward pass and the loss when asked (matrix
        products in bf16; the logits are cast back, so softmax and KL stay fp32)."""
        if self.autocast is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast)

    def _teacher_logits(self, inputs, indices) -> Tensor | TopKTargets | None:
        if self.signal is None:
            return None
        if isinstance(self.signal, OnlineTeacher):  # a live module is read as the student is
            logits = self.signal.logits(inputs, indices, read=self.loss.outputs)
        else:
            logits = self.signal.logits(inputs, indices)
        finite = logits.is_finite() if not isinstance(logits, Tensor) else torch.isfinite(logits)
        if not bool(finite.all() if isinstance(finite, Tensor) else finite):
            raise ValueError(
                f"the teacher produced NaN or Inf logits at epoch {self.state.epoch + 1}, "
                f"step {self.state.step + 1}"
            )
        return logits

    def _stop_non_finite(self, value: float) -> None:
        state, last_good = self.state, self.last_good
        last_good.restore()
        where = f"the checkpoint {last_good.path}" if last_good.path else "memory"
        raise NonFiniteLossError(
            f"{self.description}: the loss became {value} at epoch {state.epoch + 1}, step "
            f"{state.step + 1} (global step {state.global_step + 1}); training stopped and the "
            f"student was restored to its weights after epoch {last_good.epoch}"
            f"{f' and {last_good.step} batches' if last_good.step else ''} (from {where}). "
            "Lower the learning rate, clip gradients (grad_clip) or check the data for NaN/Inf.",
            epoch=state.epoch + 1,
            step=state.step + 1,
            checkpoint=last_good.path,
        )

    def _evaluate(self, eval_data) -> dict[str, float]:
        scores = self.task.evaluate(self.model, eval_data, teacher=self.eval_signal,
                                    batch_size=self.config.eval_batch_size,
                                    device=str(self.device), memo=self.eval_memo)
        return {f"eval_{k}": v for k, v in scores.items()}
