"""Distillation losses: each family in its own module over :class:`DistillationLoss`."""

from distill.losses.base import DistillationLoss
from distill.losses.combined import CombinedLoss
from distill.losses.layers import AttentionLoss, HiddenStateLoss
from distill.losses.soft_targets import HardLabelLoss, KDLoss, soft_target_kl
from distill.losses.token_kd import TokenKDLoss

__all__ = [
    "AttentionLoss",
    "CombinedLoss",
    "DistillationLoss",
    "HardLabelLoss",
    "HiddenStateLoss",
    "KDLoss",
    "TokenKDLoss",
    "soft_target_kl",
]
