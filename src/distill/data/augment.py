"""Batch augmentations applied inside the engine, so teacher and student see the same views.

Beyer et al. (2022), "Knowledge distillation: A good teacher is patient and consistent": the
student learns best when the teacher labels exactly the augmented image the student sees.
Augmenting whole batches on the training device keeps that consistency for free.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from distill.registry import Registry


class FlipShift:
    """Random horizontal flip and random translation by up to ``pad`` pixels, per sample."""

    def __init__(self, pad: int = 2, flip: bool = True):
        self.pad = int(pad)
        self.flip = bool(flip)

    def __call__(self, x: Tensor) -> Tensor:
        if x.dim() != 4:
            raise ValueError(f"FlipShift expects image batches (N, C, H, W), got {tuple(x.shape)}")
        n, _, h, w = x.shape
        device = x.device
        if self.flip:
            flip = torch.rand(n, device=device) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        if self.pad <= 0:
            return x
        p = self.pad
        # pad with each image's background value (its minimum), not with zeros of the
        # normalised scale, so shifted borders look like the original background
        fill = x.amin(dim=(1, 2, 3), keepdim=True)
        padded = F.pad(x - fill, (p, p, p, p)) + fill
        dy = torch.randint(0, 2 * p + 1, (n,), device=device)
        dx = torch.randint(0, 2 * p + 1, (n,), device=device)
        rows = (dy[:, None] + torch.arange(h, device=device))[:, :, None]
        cols = (dx[:, None] + torch.arange(w, device=device))[:, None, :]
        batch = torch.arange(n, device=device)[:, None, None]
        out = padded[batch, :, rows, cols]  # (N, H, W, C)
        return out.permute(0, 3, 1, 2).contiguous()

    def __repr__(self) -> str:
        return f"FlipShift(pad={self.pad}, flip={self.flip})"


def _no_augmentation() -> None:
    return None


AUGMENTATIONS: Registry[Callable[[], Callable | None]] = Registry("augmentation")
"""Names → factories of batch augmentations (``"none"``'s makes nothing)."""
AUGMENTATIONS.register("none", _no_augmentation)
AUGMENTATIONS.register("flip-shift", FlipShift)


def make_augmentation(name: str) -> Callable | None:
    """The augmentation registered as ``name`` (None for ``"none"``)."""
    return AUGMENTATIONS.get(name)()
