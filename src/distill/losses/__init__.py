"""Distillation losses: each family in its own module over :class:`DistillationLoss`."""

from distill.losses.base import DistillationLoss
from distill.losses.soft_targets import HardLabelLoss, KDLoss, soft_target_kl

__all__ = ["DistillationLoss", "HardLabelLoss", "KDLoss", "soft_target_kl"]
