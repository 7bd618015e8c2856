"""Intermediate-layer transfer: student blocks learn what teacher blocks output.

Hidden states (MSE, or DistilBERT's cosine loss) and attention maps (KL between the heads'
attention distributions) are read from forward hooks while both models run as usual, so the
models need no edits. Where widths differ, a learned linear projection maps the student's hidden
states to the teacher's width; it is trained with the student (the engine optimises a loss's
own parameters) and never saved with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from distill.features import FeatureTap, attention_weights, first_tensor
from distill.losses.base import DistillationLoss, masked_mean

LayerKey = int | str


def _layer_pairs(student: nn.Module, teacher: nn.Module, layers: Any, part: str
                 ) -> list[tuple[str, str]]:
    from distill.hf.layers import block_names, layer_name, spread_layers

    if layers is None or layers == "spread":
        layers = spread_layers(len(block_names(student)), len(block_names(teacher)))
    if not isinstance(layers, Mapping) or not layers:
        raise ValueError(
            "layers must map student layers to teacher layers, e.g. {0: 1, 1: 3, 2: 5} "
            "(block indices) or {'encoder.layer.0': 'encoder.layer.1'} (module names)"
        )
    return [(layer_name(student, s, part), layer_name(teacher, t, part))
            for s, t in layers.items()]


def _width(model: nn.Module, width: int | None) -> int | None:
    return width if width is not None else getattr(getattr(model, "config", None),
                                                   "hidden_size", None)


class _LayerLoss(DistillationLoss):
    """Hooks on both models; ``forward`` ignores logits and reads the captured layers."""

    part = "block"

    def __init__(self, student: nn.Module, teacher: nn.Module,
                 layers: Mapping[LayerKey, LayerKey] | Literal["spread"] | None, select):
        super().__init__()
        self.pairs = _layer_pairs(student, teacher, layers, self.part)
        # plain attributes, not submodules: the models must not become part of the loss
        self.__dict__["_student_tap"] = FeatureTap(student, [s for s, _ in self.pairs], select)
        self.__dict__["_teacher_tap"] = FeatureTap(teacher, [t for _, t in self.pairs], select)
        self.__dict__["_mask"] = None
        self.__dict__["_mask_hook"] = student.register_forward_pre_hook(
            self._keep_mask, with_kwargs=True
        )

    def _keep_mask(self, _module: nn.Module, args: tuple, kwargs: dict) -> None:
        mask = kwargs.get("attention_mask")
        self.__dict__["_mask"] = mask if isinstance(mask, Tensor) else None

    def token_mask(self, like: Tensor) -> Tensor | None:
        """The student batch's attention mask (1 = real token), if it had one of this shape."""
        mask = self._mask
        if mask is None or mask.shape != like.shape[:2]:
            return None
        return mask.to(like.device).bool()

    def release(self) -> None:
        self._student_tap.remove()
        self._teacher_tap.remove()
        self._mask_hook.remove()

    def layer_pairs(self) -> list[tuple[Tensor, Tensor]]:
        """This step's (student, teacher) outputs per pair, consumed: a step whose models did
        not run raises instead of silently reusing the last step's features."""
        try:
            return [(self._student_tap[s], self._teacher_tap[t].detach()) for s, t in self.pairs]
        except RuntimeError as err:
            raise RuntimeError(
                f"{err}. Layer losses need both models to run on every batch: a live teacher "
                "module, not cached teacher outputs"
            ) from err
        finally:
            self._student_tap.clear()
            self._teacher_tap.clear()


class HiddenStateLoss(_LayerLoss):
    """Mean over mapped layers of MSE or cosine distance (1 - cos) between hidden states.

    ``layers`` maps student layers to teacher layers, by block index or module name; the
    default spreads the student's blocks over the teacher's (student block i learns from teacher
    block ``(i + 1) * T // S - 1``, DistilBERT's every-other mapping). Padding tokens (from the
    student's ``attention_mask``) are left out.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module,
                 layers: Mapping[LayerKey, LayerKey] | Literal["spread"] | None = None,
                 kind: Literal["mse", "cosine"] = "cosine", *,
                 student_width: int | None = None, teacher_width: int | None = None):
        if kind not in ("mse", "cosine"):
            raise ValueError(f"kind must be 'mse' or 'cosine', got {kind!r}")
        super().__init__(student, teacher, layers, select=first_tensor)
        self.kind = kind
        s, t = _width(student, student_width), _width(teacher, teacher_width)
        self.projections = nn.ModuleList()
        if s is not None and t is not None and s != t:
            self.projections.extend(nn.Linear(s, t, bias=False) for _ in self.pairs)

    def forward(self, student_logits: Tensor, teacher_logits: Any = None,
                labels: Tensor | None = None) -> Tensor:
        total = student_logits.new_zeros(())
        for i, (s, t) in enumerate(self.layer_pairs()):
            if len(self.projections):
                s = self.projections[i](s)
            if s.shape != t.shape:
                raise ValueError(
                    f"hidden states of {self.pairs[i][0]!r} {tuple(s.shape)} and "
                    f"{self.pairs[i][1]!r} {tuple(t.shape)} differ in shape; give "
                    "student_width/teacher_width so a projection can map one to the other"
                )
            if self.kind == "cosine":
                per_token = 1.0 - F.cosine_similarity(s.float(), t.float(), dim=-1)
            else:
                per_token = (s.float() - t.float()).pow(2).mean(-1)
            mask = self.token_mask(per_token.unsqueeze(-1))
            total = total + masked_mean(per_token.reshape(-1), mask)
        return total / len(self.pairs)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, pairs={self.pairs}"


class AttentionLoss(_LayerLoss):
    """KL(teacher attention || student attention) per query, averaged over heads and layers.

    Needs the attention weights, which Hugging Face models return only with
    ``attn_implementation="eager"``. Head counts that differ are compared on the heads' mean.
    """

    part = "attention"

    def __init__(self, student: nn.Module, teacher: nn.Module,
                 layers: Mapping[LayerKey, LayerKey] | Literal["spread"] | None = None):
        for model, role in ((student, "student"), (teacher, "teacher")):
            impl = getattr(getattr(model, "config", None), "_attn_implementation", "eager")
            if impl not in (None, "eager"):
                raise ValueError(
                    f"the {role} uses {impl!r} attention, which does not return attention "
                    "weights; load it with attn_implementation='eager' (or call "
                    "model.set_attn_implementation('eager'))"
                )
        super().__init__(student, teacher, layers, select=attention_weights)

    def forward(self, student_logits: Tensor, teacher_logits: Any = None,
                labels: Tensor | None = None) -> Tensor:
        total = student_logits.new_zeros(())
        for s, t in self.layer_pairs():
            if s.shape[1] != t.shape[1]:  # different head counts: compare the mean head
                s, t = s.mean(1, keepdim=True), t.mean(1, keepdim=True)
            log_q = torch.log(s.float().clamp_min(1e-12))
            p = t.float()
            per_query = (p * (torch.log(p.clamp_min(1e-12)) - log_q)).sum(-1)  # (B, H, Q)
            per_query = per_query.mean(1)
            mask = self.token_mask(per_query.unsqueeze(-1))
            total = total + masked_mean(per_query.reshape(-1), mask)
        return total / len(self.pairs)
