"""Training settings, and the optimizer and learning-rate schedule they describe."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
from torch import nn

Optimizer = Literal["adamw", "adam", "sgd"]
Schedule = Literal["cosine", "linear", "constant"]
Precision = Literal["fp32", "bf16", "auto"]


@dataclass
class TrainConfig:
    """How to train. Defaults suit small students; the recipes override what they need."""

    epochs: int = 1
    batch_size: int = 128
    lr: float = 3e-3
    optimizer: Optimizer = "adamw"
    weight_decay: float = 5e-4
    momentum: float = 0.9
    schedule: Schedule = "cosine"
    warmup_ratio: float = 0.1
    grad_clip: float | None = None
    accumulate: int = 1  # optimizer step every this many batches (gradients summed)
    precision: Precision = "fp32"  # "bf16": autocast; "auto": bf16 on GPUs that have it
    seed: int = 0
    distributed: Literal["ddp", "fsdp"] = "ddp"  # under torchrun: replicate, or shard the student
    resume: bool = False  # continue from checkpoint_dir's last complete epoch, if any
    device: str = "cpu"
    num_threads: int | None = None
    augment: Callable | None = None
    on_policy: Any = None  # a distill.lm.OnPolicy: some batches become the student's own text
    eval_batch_size: int = 512
    channels_last: bool | None = None  # None: on for models with 2-D convolutions
    progress: bool | None = None  # None: show a bar when attached to a terminal

    def __post_init__(self) -> None:
        checks = {
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 1,
            "lr": self.lr > 0,
            "weight_decay": self.weight_decay >= 0,
            "warmup_ratio": 0 <= self.warmup_ratio < 1,
            "accumulate": isinstance(self.accumulate, int) and self.accumulate >= 1,
            "grad_clip": self.grad_clip is None or self.grad_clip > 0,
            "seed": isinstance(self.seed, int) and -(2**63) <= self.seed < 2**64,  # torch's range
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"invalid training setting {name}={getattr(self, name)!r}")
        if self.optimizer not in ("adamw", "adam", "sgd"):
            raise ValueError(f"optimizer must be 'adamw', 'adam' or 'sgd', got {self.optimizer!r}")
        if self.distributed not in ("ddp", "fsdp"):
            raise ValueError(f"distributed must be 'ddp' or 'fsdp', got {self.distributed!r}")
        if self.precision not in ("fp32", "bf16", "auto"):
            raise ValueError(f"precision must be 'fp32', 'bf16' or 'auto', got {self.precision!r}")
        if self.schedule not in ("cosine", "linear", "constant"):
            raise ValueError(
                f"schedule must be 'cosine', 'linear' or 'constant', got {self.schedule!r}"
            )

    def describe(self) -> dict[str, Any]:
        d = asdict(self)
        d["augment"] = repr(self.augment) if self.augment is not None else None
        d["on_policy"] = repr(self.on_policy) if self.on_policy is not None else None
        return d


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
    return cls(params, lr=config.lr, weight_decay=config.weight_decay)


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
