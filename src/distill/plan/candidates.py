"""What the planner may recommend: the recipe's student at several widths, each deployed in
several ways (PyTorch or ONNX Runtime, fp32 or int8), every one of them a runnable recipe."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from distill.recipes.schema import CNNSpec, MLPSpec, Recipe

# how a trained student is deployed: the pipeline stages that follow its distillation
DEPLOY_KINDS: dict[str, list[dict[str, Any]]] = {
    "pytorch fp32": [],
    "pytorch int8": [{"kind": "quantize", "method": "static"}],
    "onnx fp32": [{"kind": "export"}],
    "onnx int8": [{"kind": "export", "int8": "static"}],
}
DEFAULT_WIDTHS = (0.25, 0.5, 0.75, 1.0)
DEFAULT_PRUNE = (0.0, 0.5)


@dataclass
class Candidate:
    """One plan: a student width, a share of its channels pruned (then recovered by
    distillation), and a way to deploy it; ``stages`` is the pipeline that does it."""

    width: float
    student: dict[str, Any]
    deploy: str
    stages: list[dict[str, Any]] = field(default_factory=list)
    prune: float = 0.0

    @property
    def name(self) -> str:
        pruned = f", pruned {self.prune:.0%}" if self.prune else ""
        return f"width {self.width:g}{pruned}, {self.deploy}"

    @property
    def deploy_stages(self) -> list[dict[str, Any]]:
        return self.stages[2:] if self.prune else self.stages

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


def candidates(recipe: Recipe, widths: tuple[float, ...] = DEFAULT_WIDTHS,
               deploy: tuple[str, ...] = tuple(DEPLOY_KINDS),
               prune: tuple[float, ...] = DEFAULT_PRUNE) -> list[Candidate]:
    """Every width × pruning ratio × deployment; a pruned student is recovered by
    distillation for a third of the recipe's epochs (at least one)."""
    unknown = [d for d in deploy if d not in DEPLOY_KINDS]
    if unknown:
        raise ValueError(f"unknown deployment {unknown}; choose from {list(DEPLOY_KINDS)}")
    if not widths or any(w <= 0 for w in widths):
        raise ValueError(f"widths must be positive, got {list(widths)}")
    if any(not 0 <= r < 1 for r in prune):
        raise ValueError(f"pruning ratios must be in [0, 1), got {list(prune)}")
    recover = max(1, recipe.train.epochs // 3)
    out = []
    for w in sorted(set(widths)):
        for r in sorted(set(prune) | {0.0}) if prune else [0.0]:
            before = ([{"kind": "prune", "method": "structured", "ratio": r},
                       {"kind": "distill", "epochs": recover}] if r else [])
            out += [Candidate(w, scaled_student(recipe.student, w), d,
                              before + DEPLOY_KINDS[d], r) for d in deploy]
    return out


def candidate_recipe(recipe: Recipe, candidate: Candidate,
                     stages: list[dict[str, Any]] | None = None) -> Recipe:
    """The runnable recipe of ``candidate``: the base recipe with its student and stages
    (or ``stages``, part of them)."""
    table = recipe.model_dump(mode="json", exclude_none=True)
    table.update(name=f"{recipe.name or 'plan'}-{candidate.slug}", student=candidate.student,
                 stages=candidate.stages if stages is None else stages,
                 baseline={"enabled": False})
    return Recipe.model_validate(table)


def recipe_toml(recipe: Recipe, header: str) -> str:
    """``recipe`` as TOML (values the recipe leaves unset are omitted), after a comment."""
    import tomli_w

    table = recipe.model_dump(mode="json", exclude_none=True)
    if not table.get("stages"):
        table.pop("stages", None)
    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return comment + tomli_w.dumps(table)
