"""Training settings, and the optimizer and learning-rate schedule they describe."""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from typing import Any, Literal

import torch
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    ValidationError,
    field_validator,
    model_validator,
)
from torch import nn

from distill.data.augment import AUGMENTATIONS
from distill.values import Count, Device, Fraction, Seed, Threads

Optimizer = Literal["adamw", "adam", "sgd"]
Schedule = Literal["cosine", "linear", "constant"]
Precision = Literal["fp32", "bf16", "auto"]


class TrainSettings(BaseModel):
    """How to train: the one declaration of every setting a recipe's ``[train]`` table, the
    one-call API's keywords and the engine share. Defaults suit small students."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, populate_by_name=True)

    epochs: Count = 1
    batch_size: Count = 128
    lr: PositiveFloat = 3e-3
    optimizer: Optimizer = "adamw"
    weight_decay: NonNegativeFloat = 5e-4
    momentum: Fraction = 0.9
    """SGD's momentum (Nesterov when above 0); the Adam optimizers ignore it."""
    schedule: Schedule = "cosine"
    warmup_ratio: Fraction = 0.1
    grad_clip: PositiveFloat | None = None
    accumulate: Count = 1
    """Optimizer step every this many batches: an effective batch of accumulate × batch_size."""
    precision: Precision = "fp32"
    """``bf16``: forward passes under bfloat16 autocast; ``auto``: bf16 on GPUs that have it."""
    seed: Seed = 0
    """0 ≤ seed < 2**32 (what numpy's seeding takes)."""
    distributed: Literal["ddp", "fsdp"] = "ddp"
    """Under torchrun: ``ddp`` replicates the student on every process, ``fsdp`` shards it."""
    device: Device = "cpu"
    threads: Threads | None = Field(None, validation_alias=AliasChoices("threads", "num_threads"))
    """torch's CPU threads while training (None: torch's default); also ``num_threads``."""
    augment: str = "none"
    """Applied per batch; a distilled student's teacher labels the very same views."""
    checkpoint_steps: Count | None = None
    """With a checkpoint folder, also checkpoint every this many batches inside an epoch (a
    multiple of ``accumulate``): long epochs then lose at most that much to an interruption."""

    @field_validator("augment")
    @classmethod
    def _known_augmentation(cls, value: str) -> str:
        AUGMENTATIONS.canonical(value)  # an unknown name: "did you mean", and the choices
        return value

    @model_validator(mode="after")
    def _checkpoints_between_updates(self) -> TrainSettings:
        if self.checkpoint_steps is not None and self.checkpoint_steps % self.accumulate:
            raise ValueError(f"checkpoint_steps ({self.checkpoint_steps}) must be a multiple of "
                             f"accumulate ({self.accumulate}): a checkpoint falls between "
                             "optimizer steps, never inside one")
        return self


class TrainConfig(TrainSettings):
    """:class:`TrainSettings` plus what only a Python caller can hand over (an augmentation
    callable, an on-policy sampler) and how a call reports and resumes."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    augment: str | Callable | None = None  # type: ignore[assignment]
    on_policy: Any = None
    """A :class:`distill.lm.OnPolicy`: some batches become the student's own text."""
    resume: bool = False
    """Continue from ``checkpoint_dir``'s last complete epoch, if any."""
    eval_batch_size: Count = 512
    channels_last: bool | None = None
    """None: on for models with 2-D convolutions."""
    progress: bool | None = None
    """None: show a bar when attached to a terminal."""

    @field_validator("augment")
    @classmethod
    def _known_augmentation(cls, value: Any) -> Any:
        if isinstance(value, str):
            AUGMENTATIONS.canonical(value)
            return None if value == "none" else value
        if value is not None and not callable(value):
            raise ValueError(f"must be an augmentation's name ({', '.join(AUGMENTATIONS)}) or "
                             f"a callable on input batches, not {type(value).__name__}")
        return value

    def __init__(self, **settings: Any):
        try:
            super().__init__(**settings)
        except ValidationError as err:
            raise settings_error(err, "training setting") from None

    @classmethod
    def from_settings(cls, config: TrainSettings | None = None, **overrides: Any) -> TrainConfig:
        """``config`` (or the defaults) with ``overrides`` applied, checked as a whole."""
        base = config.model_dump() if config is not None else {}
        return cls(**{**base, **overrides})

    @property
    def num_threads(self) -> int | None:
        return self.threads

    def augmentation(self) -> Callable | None:
        """The batch augmentation to apply (a registered name made into its callable)."""
        if isinstance(self.augment, str):
            return AUGMENTATIONS.get(self.augment)()
        return self.augment

    def describe(self) -> dict[str, Any]:
        """Every setting as plain JSON values (callables by their repr)."""
        settings = self.model_dump(exclude={"augment", "on_policy"})
        settings["augment"] = self.augment if not callable(self.augment) else repr(self.augment)
        settings["on_policy"] = repr(self.on_policy) if self.on_policy is not None else None
        settings["num_threads"] = self.threads  # the name checkpoints were written with
        return settings


def settings_error(err: ValidationError, what: str) -> Exception:
    """One readable error for the first bad setting: its name, its value, what is allowed.

    A name that is no setting at all is a TypeError with a "did you mean", as Python raises for
    an unknown keyword argument; a bad value is a ValueError.
    """
    first = err.errors()[0]
    name = ".".join(str(part) for part in first["loc"]) or "?"
    if first["type"] == "extra_forbidden":
        fields = sorted({*TrainConfig.model_fields, "num_threads"})
        close = difflib.get_close_matches(name, fields, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f" (settings: {', '.join(fields)})"
        return TypeError(f"unknown {what} {name!r}{hint}")
    if first["type"] == "literal_error":
        expected = first.get("ctx", {}).get("expected", "")
        return ValueError(f"{name} must be {expected}, got {first['input']!r}")
    message = first["msg"].removeprefix("Value error, ")
    if not first["loc"]:  # a rule between settings: its message names them
        return ValueError(f"invalid {what}s: {message}")
    return ValueError(f"invalid {what} {name}={first['input']!r}: {message}")


def autocast_dtype(config: TrainConfig) -> torch.dtype | None:
    """The dtype forward passes run in under autocast, or None for plain fp32.

    bf16 keeps fp32's exponent range, so no loss scaling is needed. On CPUs it runs
    everywhere (natively only with AVX512-BF16/AMX; emulated, and slower, elsewhere), so
    ``"auto"`` picks it only on a GPU that supports it.
    """
    device = torch.device(config.device)
    if config.precision == "fp32":
        return None
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        if config.precision == "bf16":
            raise ValueError(f"precision='bf16': the GPU {config.device} does not support bfloat16")
        return None
    if config.precision == "auto" and device.type != "cuda":
        return None
    return torch.bfloat16


def make_optimizer(
    model: nn.Module, config: TrainConfig, extra: nn.Module | None = None
) -> torch.optim.Optimizer:
    """The student's trainable parameters, plus ``extra``'s (a loss's training-only parts,
    e.g. layer projections: trained with the student, never saved with it)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the student has no trainable parameters")
    if extra is not None:
        own = {id(p) for p in params}
        params += [p for p in extra.parameters() if p.requires_grad and id(p) not in own]
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, nesterov=config.momentum > 0,
            weight_decay=config.weight_decay,
        )
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=config.lr, weight_decay=config.weight_decay,
               **({"fused": True} if _fusable(params) else {}))


_FUSED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def _fusable(params: list[nn.Parameter]) -> bool:
    """Whether torch's fused Adam kernel takes these parameters: plain (not sharded) float
    tensors on one CPU or GPU. On a CPU torch otherwise updates one tensor at a time, and
    that loop was 4.4-4.5x slower for a 67M-parameter llama (one thread,
    ``benchmarks/optimizer_step.py``), a fifth of a distillation step's time."""
    devices = {p.device for p in params}
    return (len(devices) == 1 and next(iter(devices)).type in ("cpu", "cuda")
            and all(type(p.data) is torch.Tensor and p.dtype in _FUSED_DTYPES
                    for p in params))


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """Linear warm-up, then cosine / linear decay to zero, or constant."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if schedule == "linear":
        return 1.0 - progress
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def make_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    warmup = int(config.warmup_ratio * total_steps)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, warmup, config.schedule)
    )
