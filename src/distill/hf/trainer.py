"""Distillation inside Hugging Face's ``Trainer``, with the very losses distill's own engine uses.

For users whose training already runs on ``Trainer`` (its logging, checkpointing, accelerate
and DeepSpeed integrations): swap the class, pass a teacher, keep everything else.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from distill.hf.io import require_transformers
from distill.losses.base import DistillationLoss
from distill.losses.soft_targets import KDLoss
from distill.losses.token_kd import TokenKDLoss

_Trainer = require_transformers().Trainer


class DistillationTrainer(_Trainer):
    """``transformers.Trainer`` whose loss is a distill loss against a frozen teacher.

    >>> trainer = DistillationTrainer(model=student, teacher=teacher, args=args,
    ...                               train_dataset=train, loss=KDLoss(2.0, 0.5))

    The teacher runs in eval mode without gradients on every training batch. A loss with its
    own parameters (layer projections) has them optimised alongside the student and kept out
    of the saved model. Evaluation uses the student's own loss, as ``Trainer`` does. With
    :class:`~distill.TokenKDLoss`, labels come in Hugging Face's causal-LM convention (the
    input ids, -100 where not learned) and are shifted to next tokens here.
    """

    def __init__(self, *args: Any, teacher: nn.Module, loss: DistillationLoss | None = None,
                 **kwargs: Any):
        super().__init__(*args, **kwargs)
        if not isinstance(teacher, nn.Module):
            raise TypeError(f"teacher must be an nn.Module, got {type(teacher).__name__}")
        self.teacher = teacher.eval().requires_grad_(False)
        self.distill_loss = loss if loss is not None else KDLoss()
        self.distill_loss.to(self.args.device)
        self.distill_loss.check_models(self.model, self.teacher)

    def create_optimizer(self, model: nn.Module | None = None) -> torch.optim.Optimizer:
        # older transformers take no model argument, and never pass one
        optimizer = super().create_optimizer(*([] if model is None else [model]))
        extra = [p for p in self.distill_loss.parameters() if p.requires_grad]
        known = {id(p) for group in optimizer.param_groups for p in group["params"]}
        extra = [p for p in extra if id(p) not in known]
        if extra:
            optimizer.add_param_group({"params": extra, "weight_decay": 0.0})
        return optimizer

    def compute_loss(self, model: nn.Module, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None):
        inputs = dict(inputs)
        labels = inputs.pop("labels", None)
        if not model.training:  # evaluation: the student's own hard-label loss
            return super().compute_loss(model, {**inputs, "labels": labels}, return_outputs,
                                        num_items_in_batch)
        teacher_device = next(self.teacher.parameters()).device
        if teacher_device != self.args.device:
            self.teacher.to(self.args.device)
        read = self.distill_loss.outputs
        with torch.no_grad():
            teacher_out = read(self.teacher, inputs) if self.distill_loss.needs_teacher else None
        outputs = read(model, inputs)
        if isinstance(self.distill_loss, TokenKDLoss) and labels is not None:
            labels = next_token_labels(labels)
        value = self.distill_loss(outputs, teacher_out, labels)
        return (value, outputs) if return_outputs else value


def next_token_labels(labels: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """Hugging Face causal-LM labels (the input ids) as the token each position predicts."""
    shifted = labels.new_full(labels.shape, ignore_index)
    shifted[:, :-1] = labels[:, 1:]
    return shifted
