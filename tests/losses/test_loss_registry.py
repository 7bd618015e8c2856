"""Losses by name: recipes' [loss] kind reads the registry, so a new loss is one registration."""

from __future__ import annotations

import pytest

from distill.losses import KDLoss
from distill.losses.registry import LOSSES, build_loss
from distill.recipes import RecipeError, parse_recipe

RECIPE = {"data": {"dataset": "digits"}, "teacher": {"arch": "mlp"}, "student": {"arch": "mlp"}}


def test_the_recipe_loss_kinds_are_the_registry():
    assert {"kd", "token-kd", "embedding"} <= set(LOSSES.names())
    with pytest.raises(RecipeError, match="did you mean 'kd'"):
        parse_recipe({**RECIPE, "loss": {"kind": "kdd"}})


def test_options_reach_the_loss_and_a_wrong_one_is_named():
    spec = parse_recipe({**RECIPE, "loss": {"kind": "kd", "temperature": 3.0,
                                            "options": {"ignore_index": -1}}}).loss
    loss = build_loss(spec)
    assert isinstance(loss, KDLoss) and loss.temperature == 3.0 and loss.ignore_index == -1
    spec = parse_recipe({**RECIPE, "loss": {"options": {"temprature": 3.0}}}).loss
    with pytest.raises(ValueError, match="temprature"):
        build_loss(spec)


def test_a_registered_loss_is_a_recipe_choice_at_once():
    @LOSSES.register("half-kd")
    def _half(spec, student, teacher):
        return KDLoss(spec.temperature, alpha=0.5)

    try:
        spec = parse_recipe({**RECIPE, "loss": {"kind": "half-kd"}}).loss
        assert build_loss(spec).alpha == 0.5
    finally:
        LOSSES.unregister("half-kd")
