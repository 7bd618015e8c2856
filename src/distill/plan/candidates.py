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


@dataclass
class Candidate:
    """One plan: a student width and a way to deploy it."""

    width: float
    student: dict[str, Any]
    deploy: str
    stages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"width {self.width:g}, {self.deploy}"

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
               deploy: tuple[str, ...] = tuple(DEPLOY_KINDS)) -> list[Candidate]:
    unknown = [d for d in deploy if d not in DEPLOY_KINDS]
    if unknown:
        raise ValueError(f"unknown deployment {unknown}; choose from {list(DEPLOY_KINDS)}")
    if not widths or any(w <= 0 for w in widths):
        raise ValueError(f"widths must be positive, got {list(widths)}")
    return [Candidate(w, scaled_student(recipe.student, w), d, DEPLOY_KINDS[d])
            for w in sorted(set(widths)) for d in deploy]


def candidate_recipe(recipe: Recipe, candidate: Candidate, *, with_stages: bool = True
                     ) -> Recipe:
    """The runnable recipe of ``candidate``: the base recipe with its student and stages."""
    table = recipe.model_dump(mode="json", exclude_none=True)
    table.update(name=f"{recipe.name or 'plan'}-{candidate.slug}", student=candidate.student,
                 stages=candidate.stages if with_stages else [], baseline={"enabled": False})
    return Recipe.model_validate(table)


def recipe_toml(recipe: Recipe, header: str) -> str:
    """``recipe`` as TOML (values the recipe leaves unset are omitted), after a comment."""
    import tomli_w

    table = recipe.model_dump(mode="json", exclude_none=True)
    if not table.get("stages"):
        table.pop("stages", None)
    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return comment + tomli_w.dumps(table)
