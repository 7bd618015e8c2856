"""What the planner may recommend, every one of them a runnable recipe: the recipe's student
at several widths (image and table students), or the teacher's own blocks at several depths
with MLP neurons and attention heads cut (Hugging Face text classifiers), each deployed in
several ways (PyTorch or ONNX Runtime, fp32 or int8)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from distill.recipes.schema import CNNSpec, HFLayersStudent, MLPSpec, Recipe

# how a trained student is deployed: the pipeline stages that follow its distillation
DEPLOY_KINDS: dict[str, list[dict[str, Any]]] = {
    "pytorch fp32": [],
    "pytorch int8": [{"kind": "quantize", "method": "static"}],
    "onnx fp32": [{"kind": "export"}],
    "onnx int8": [{"kind": "export", "int8": "static"}],
}
# transformers: int8 through dynamic quantization (static ranges of LayerNorm, Softmax and GELU
# outputs lose accuracy; BENCHMARKS.md "Quantization")
TEXT_DEPLOY_KINDS: dict[str, list[dict[str, Any]]] = {
    "pytorch fp32": [],
    "pytorch int8": [{"kind": "quantize", "method": "dynamic"}],
    "onnx fp32": [{"kind": "export"}],
    "onnx int8": [{"kind": "export", "int8": "dynamic"}],
    # one epoch of quantization-aware distillation, its weights then int8 in ONNX Runtime
    "onnx int8, QAT": [{"kind": "quantize", "method": "qat", "epochs": 1},
                       {"kind": "export", "int8": "dynamic"}],
    # the embedding rows the training text never reaches dropped: size, not speed
    "onnx int8, trimmed vocabulary": [{"kind": "export", "int8": "dynamic",
                                       "trim_vocabulary": True}],
}
DEFAULT_WIDTHS = (0.25, 0.5, 0.75, 1.0)
DEFAULT_PRUNE = (0.0, 0.5)
DEFAULT_HEADS = (0.0,)


@dataclass
class Candidate:
    """One plan: a student (a width, or ``label`` for text students: its blocks), a share of
    its channels or MLP neurons (``prune``) and of its attention heads (``heads``) cut, then
    recovered by distillation, and a way to deploy it; ``stages`` is the pipeline that does
    it."""

    width: float | None
    student: dict[str, Any]
    deploy: str
    stages: list[dict[str, Any]] = field(default_factory=list)
    prune: float = 0.0
    heads: float = 0.0
    label: str | None = None

    @property
    def shape(self) -> str:
        """What is trained: candidates of one shape differ only in their cuts and deployment."""
        return self.label if self.label is not None else f"{self.width:g}"

    @property
    def name(self) -> str:
        if self.label is None:
            pruned = f", pruned {self.prune:.0%}" if self.prune else ""
            return f"width {self.width:g}{pruned}, {self.deploy}"
        cuts = (f", MLP {1 - self.prune:.0%}" if self.prune else "") + (
            f", heads {1 - self.heads:.0%}" if self.heads else "")
        return f"{self.label}{cuts}, {self.deploy}"

    @property
    def cut(self) -> tuple[float, float]:
        return (self.prune, self.heads)

    @property
    def cut_stages(self) -> int:
        """How many stages come before the deployment: the cuts and one recovery."""
        cuts = bool(self.prune) + bool(self.heads)
        return cuts + 1 if cuts else 0

    @property
    def deploy_stages(self) -> list[dict[str, Any]]:
        return self.stages[self.cut_stages:]

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")


def scaled_student(spec: Any, width: float) -> dict[str, Any]:
    """The ``[student]`` table with every layer ``width`` times as wide (at least 4 units)."""
    def scale(n: int) -> int:
        return max(4, round(n * width))

    table = spec.model_dump(mode="json", exclude_none=True)
    if isinstance(spec, CNNSpec):
        table["channels"] = [scale(c) for c in spec.channels]
        table["hidden"] = scale(spec.hidden) if spec.hidden else 0
    elif isinstance(spec, MLPSpec):
        table["hidden"] = [scale(h) for h in spec.hidden]
    else:
        raise ValueError(f"the planner scales 'cnn' and 'mlp' students; [student] arch = "
                         f"'{getattr(spec, 'arch', '?')}' is not one (yet)")
    return table


def _check_ratios(name: str, ratios: tuple[float, ...]) -> None:
    if any(not 0 <= r < 1 for r in ratios):
        raise ValueError(f"{name} ratios must be in [0, 1), got {list(ratios)}")


BLOCK_CHOICES = ("every-other", "first", "importance")


def candidates(recipe: Recipe, widths: tuple[float, ...] = DEFAULT_WIDTHS,
               deploy: tuple[str, ...] | None = None,
               prune: tuple[float, ...] = DEFAULT_PRUNE, *,
               blocks: tuple[int, ...] | None = None, heads: tuple[float, ...] = DEFAULT_HEADS,
               teacher_blocks: int | None = None,
               block_choice: tuple[str, ...] = ("every-other",),
               importance: list[float] | None = None) -> list[Candidate]:
    """Every width × pruning ratio × deployment; a pruned student is recovered by
    distillation for a third of the recipe's epochs (at least one).

    A Hugging Face text student (``arch = "hf-layers"``) is planned over ``blocks`` (how many
    of the teacher's ``teacher_blocks`` it keeps, evenly from the first: DistilBERT's rule) ×
    ``prune`` (share of MLP neurons cut) × ``heads`` (share of attention heads cut) ×
    deployment; ``widths`` do not apply to it. ``block_choice`` says which blocks: evenly
    from the first (``every-other``), the ``first`` ones, or the most important by
    ``importance`` (a score per teacher block, higher = keep; Minitron's block importance).
    """
    if isinstance(recipe.student, HFLayersStudent):
        return text_candidates(recipe, teacher_blocks, blocks, prune, heads, deploy,
                               block_choice, importance)
    deploy = tuple(DEPLOY_KINDS) if deploy is None else deploy
    unknown = [d for d in deploy if d not in DEPLOY_KINDS]
    if unknown:
        raise ValueError(f"unknown deployment {unknown}; choose from {list(DEPLOY_KINDS)}")
    if not widths or any(w <= 0 for w in widths):
        raise ValueError(f"widths must be positive, got {list(widths)}")
    _check_ratios("pruning", prune)
    recover = max(1, recipe.train.epochs // 3)
    out = []
    for w in sorted(set(widths)):
        for r in sorted(set(prune) | {0.0}) if prune else [0.0]:
            before = ([{"kind": "prune", "method": "structured", "ratio": r},
                       {"kind": "distill", "epochs": recover}] if r else [])
            out += [Candidate(w, scaled_student(recipe.student, w), d,
                              before + DEPLOY_KINDS[d], r) for d in deploy]
    return out


def default_blocks(teacher_blocks: int) -> tuple[int, ...]:
    """Half, a third and a sixth of the teacher's blocks (at least one, each once)."""
    return tuple(sorted({max(1, round(teacher_blocks / d)) for d in (2, 3, 6)}, reverse=True))


def kept_blocks(count: int, teacher_blocks: int, choice: str,
                importance: list[float] | None = None) -> list[int]:
    """Which of the teacher's blocks a ``count``-block student keeps, in order."""
    if choice == "every-other":
        return [i * teacher_blocks // count for i in range(count)]
    if choice == "first":
        return list(range(count))
    if choice == "importance":
        if importance is None or len(importance) != teacher_blocks:
            raise ValueError("block_choice 'importance' needs a score per teacher block")
        return sorted(sorted(range(teacher_blocks), key=lambda i: -importance[i])[:count])
    raise ValueError(f"unknown block choice {choice!r}; choose from {list(BLOCK_CHOICES)}")


def _block_label(count: int, choice: str) -> str:
    noun = f"block{'s' if count > 1 else ''}"
    return {"every-other": f"{count} {noun}", "first": f"first {count} {noun}",
            "importance": f"{count} {noun} by importance"}[choice]


def text_candidates(recipe: Recipe, teacher_blocks: int | None,
                    blocks: tuple[int, ...] | None, prune: tuple[float, ...],
                    heads: tuple[float, ...], deploy: tuple[str, ...] | None,
                    block_choice: tuple[str, ...] = ("every-other",),
                    importance: list[float] | None = None) -> list[Candidate]:
    """Blocks kept × MLP cut × heads cut × deployment for a Hugging Face text student; a
    choice of blocks that another choice already made is listed once."""
    if teacher_blocks is None:
        raise ValueError("planning a text student needs the teacher's block count "
                         "(teacher_blocks)")
    deploy = tuple(TEXT_DEPLOY_KINDS) if deploy is None else deploy
    unknown = [d for d in deploy if d not in TEXT_DEPLOY_KINDS]
    if unknown:
        raise ValueError(f"unknown deployment {unknown}; choose from {list(TEXT_DEPLOY_KINDS)}")
    counts = default_blocks(teacher_blocks) if blocks is None else tuple(blocks)
    bad = [b for b in counts if not 1 <= b <= teacher_blocks]
    if not counts or bad:
        raise ValueError(f"blocks must be between 1 and the teacher's {teacher_blocks}, got "
                         f"{list(counts)}")
    _check_ratios("MLP pruning", prune)
    _check_ratios("head pruning", heads)
    recover = max(1, recipe.train.epochs // 3)
    out, seen = [], set()
    for count in sorted(set(counts), reverse=True):
        for choice in dict.fromkeys(block_choice):
            kept = kept_blocks(count, teacher_blocks, choice, importance)
            if tuple(kept) in seen:
                continue
            seen.add(tuple(kept))
            student = {"arch": "hf-layers", "layers": kept}
            label = _block_label(count, choice)
            for mlp in sorted(set(prune) | {0.0}):
                for cut_heads in sorted(set(heads) | {0.0}):
                    before = ([{"kind": "prune", "method": "structured", "ratio": mlp}] if mlp
                              else [])
                    if cut_heads:
                        before.append({"kind": "prune", "method": "structured",
                                       "ratio": cut_heads, "target": "heads"})
                    if before:
                        before.append({"kind": "distill", "epochs": recover})
                    out += [Candidate(None, student, d, before + TEXT_DEPLOY_KINDS[d], mlp,
                                      cut_heads, label) for d in deploy]
    return out


def candidate_recipe(recipe: Recipe, candidate: Candidate,
                     stages: list[dict[str, Any]] | None = None) -> Recipe:
    """The runnable recipe of ``candidate``: the base recipe with its student and stages
    (or ``stages``, part of them)."""
    # what the recipe set, not every default: some settings are refused beside others when
    # given explicitly (a table's standardize beside its text_column)
    table = recipe.model_dump(mode="json", exclude_none=True, exclude_unset=True)
    table.update(name=f"{recipe.name or 'plan'}-{candidate.slug}", student=candidate.student,
                 stages=candidate.stages if stages is None else stages,
                 baseline={"enabled": False})
    return Recipe.model_validate(table)


def recipe_toml(recipe: Recipe, header: str) -> str:
    """``recipe`` as TOML (values the recipe leaves unset are omitted), after a comment."""
    import tomli_w

    table = recipe.model_dump(mode="json", exclude_none=True, exclude_unset=True)
    if not table.get("stages"):
        table.pop("stages", None)
    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return comment + tomli_w.dumps(table)
