"""Property-based: whatever a recipe file holds, loading it (and `distill run --check`) ends in
a valid recipe or a RecipeError that names where the problem is, never a traceback; a valid
recipe holds only values a run can use."""

from __future__ import annotations

import copy
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import BaseModel

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from distill.cli import main  # noqa: E402
from distill.recipes import RecipeError  # noqa: E402
from distill.recipes.loader import load_recipe  # noqa: E402
from distill.recipes.schema import Recipe, TrainSpec  # noqa: E402
from distill.recipes.values import (  # noqa: E402
    MAX_COUNT,
    MAX_NESTING,
    SEED_LIMIT,
    check_path_text,
)
from distill.runtime import seed_everything  # noqa: E402

BASE = {
    "name": "fuzz",
    "data": {"dataset": "digits"},
    "teacher": {"arch": "cnn", "channels": [8], "train": {"epochs": 1}},
    "student": {"arch": "mlp", "hidden": [8]},
    "loss": {"temperature": 2.0, "alpha": 0.5},
    "train": {"epochs": 1, "batch_size": 64, "accumulate": 1, "precision": "fp32"},
    "evaluate": {"latency_repeats": 3},
    "stages": [{"kind": "prune", "ratio": 0.5}, {"kind": "export", "int8": "static"}],
}
SCALARS = (st.integers(-10**12, 10**12) | st.floats(allow_nan=True) | st.booleans()
           | st.text(max_size=12))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=3),
                      max_leaves=6)


def _paths(value, prefix=()):
    """Every place in the recipe a mutation can touch: table keys and list items."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield (*prefix, key)
            yield from _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield (*prefix, i)
            yield from _paths(inner, (*prefix, i))


PATHS = list(_paths(BASE))


@st.composite
def mutated(draw):
    recipe = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        parent = recipe
        try:
            for step in path[:-1]:
                parent = parent[step]
            action = draw(st.sampled_from(["replace", "delete", "add"]))
            if action == "replace":
                parent[path[-1]] = draw(VALUES)
            elif action == "delete" and isinstance(parent, dict):
                del parent[path[-1]]
            elif isinstance(parent, dict):
                parent[draw(st.text(min_size=1, max_size=10))] = draw(VALUES)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this place
    return recipe


def _write(path, recipe) -> bool:
    import tomli_w

    try:
        path.write_text(tomli_w.dumps(recipe))
    except (TypeError, ValueError):  # not representable in TOML (e.g. a top-level list)
        return False
    return True


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(recipe=mutated())
def test_any_mutated_recipe_loads_or_names_its_problem(tmp_path, recipe):
    path = tmp_path / "recipe.toml"
    if not _write(path, recipe):
        return
    try:
        load_recipe(path)
    except RecipeError as err:
        message = str(err)
        assert message.startswith(str(path)) and "\n  - " in message or "TOML" in message
        assert "Traceback" not in message


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200) | st.binary(max_size=200))
def test_arbitrary_file_contents_are_refused_cleanly_by_the_cli(tmp_path, capsys, text):
    path = tmp_path / "recipe.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    code = main(["run", str(path), "--check"])
    out = capsys.readouterr()
    assert code in (0, 1)
    assert "Traceback" not in out.err
    if code == 1:
        assert out.err.startswith("distill run: error: ") and str(path) in out.err


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(recipe=mutated())
def test_the_cli_check_never_shows_a_traceback(tmp_path, capsys, recipe):
    path = tmp_path / "recipe.toml"
    if not _write(path, recipe):
        return
    code = main(["run", str(path), "--check"])
    out = capsys.readouterr()
    assert code in (0, 1) and "Traceback" not in out.err


# --- Hostile values: every value class a file can smuggle in, in every field of every kind of
# recipe. Each case is a recipe whose values a run can use, or a RecipeError naming the field.

NO_USER = "~distill-no-such-user"
TRAIN = {"epochs": 1, "batch_size": 64, "lr": 0.01, "weight_decay": 0.0, "warmup_ratio": 0.1,
         "grad_clip": 1.0, "accumulate": 1, "seed": 7, "device": "cpu", "threads": 1}
BASES = [
    {"name": "image", "data": {"dataset": "digits", "root": "data", "labeled": 100},
     "teacher": {"arch": "cnn", "channels": [8], "convs_per_stage": 1, "hidden": 4,
                 "dropout": 0.1, "outputs": "cached", "top_k": 3, "cache_path": "cache",
                 "train": {**TRAIN}},
     "student": {"arch": "mlp", "hidden": [8], "dropout": 0.0},
     "loss": {"temperature": 2.0, "alpha": 0.5}, "train": {**TRAIN},
     "baseline": {"enabled": True, "train": {"epochs": 1, "lr": 0.1}},
     "evaluate": {"threads": 1, "batch_sizes": [1, 64], "latency_repeats": 3},
     "stages": [{"kind": "prune", "ratio": 0.5}, {"kind": "distill", "epochs": 1, "lr": 0.01},
                {"kind": "quantize", "method": "qat", "epochs": 1, "lr": 0.001,
                 "calibration_batches": 2, "group_size": 32}]},
    {"data": {"dataset": "fashion-mnist"},
     "teacher": {"members": [{"arch": "mlp", "hidden": [16], "train": {"epochs": 1}},
                             {"path": "teachers/a"}], "weights": [1.0, 2.0]},
     "student": {"path": "students/s"},
     "stages": [{"kind": "export", "int8": "static", "calibration_batches": 4}]},
    {"data": {"dataset": "digits"}, "self_distill": {"method": "ema", "generations": 3,
                                                     "decay": 0.9},
     "student": {"arch": "cnn", "channels": [4, 8], "hidden": 16}, "train": {"seed": 3}},
    {"data": {"dataset": "digits"}, "teacher": {"path": "teacher"},
     "student": {"arch": "pruned", "ratio": 0.25, "steps": 2}, "train": {"epochs": 2}},
    {"name": "hf", "data": {"dataset": "rotten-tomatoes", "max_length": 32},
     "teacher": {"arch": "hf", "model": "org/teacher", "finetune": {"epochs": 1, "lr": 2e-5}},
     "student": {"arch": "hf-scratch", "config": {"hidden_size": 64, "layer_norm_eps": 1e-12,
                                                  "hidden_act": "gelu", "tie": True}},
     "loss": {"temperature": 3.0, "hidden": {"weight": 1.0, "layers": {"0": 1, "1": "enc.3"}},
              "attention": {"weight": 0.5}},
     "stages": [{"kind": "quantize", "method": "qat", "epochs": 1},
                {"kind": "export", "int8": "static", "calibration_batches": 2}]},
    {"data": {"dataset": "rotten-tomatoes"},
     "teacher": {"arch": "hf", "model": "org/teacher", "outputs": "cached", "top_k": 5,
                 "cache_path": "~/cache"},
     "student": {"arch": "hf-layers", "layers": [0, 2]}},
    {"data": {"dataset": "rotten-tomatoes"},
     "teacher": {"arch": "hf", "model": "org/teacher", "task": "sentence-embedding"},
     "student": {"arch": "hf", "model": "org/student"}, "loss": {"kind": "embedding"}},
]
BASE_PATHS = [(i, path) for i, base in enumerate(BASES) for path in _paths(base)]
DEEP = "@@deep@@"  # written as a placeholder, then replaced by the nested text (tomli_w recurses)

HOSTILE = st.one_of(
    st.sampled_from([math.inf, -math.inf, math.nan]),
    st.sampled_from([2**31, 2**32, 2**63, 2**64, 10**23, 10**30, -1, -2**31 - 1, -2**63 - 1]),
    st.integers(min_value=2**31) | st.integers(max_value=-1),
    st.sampled_from([f"{NO_USER}/x", NO_USER, "~", "a\0b", "\0", "x" * 256, "é" * 128,
                     "/".join(["y" * 200] * 21), "~/" + "z" * 300]),
    st.builds(lambda a, b: f"{a}\0{b}", st.text(max_size=4), st.text(max_size=4)),
    st.tuples(st.integers(MAX_NESTING - 3, 1000), st.booleans()),  # (depth, inline tables)
)


@st.composite
def hostile_recipes(draw):
    """A valid recipe with one field (or table, or list item) replaced by a hostile value;
    returns the recipe, the path replaced and the nested text that stands for DEEP."""
    index, path = draw(st.sampled_from(BASE_PATHS))
    recipe = copy.deepcopy(BASES[index])
    value, deep = draw(HOSTILE), None
    if isinstance(value, tuple):
        depth, inline = value
        deep = "{a = " * depth + "1" + "}" * depth if inline else "[" * depth + "]" * depth
        value = DEEP
    parent = recipe
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return recipe, path, deep


def _write_hostile(file, recipe, deep) -> None:
    import tomli_w

    text = tomli_w.dumps(recipe)
    file.write_text(text.replace(f'"{DEEP}"', deep) if deep else text, encoding="utf-8")


def _assert_names(message: str, path) -> None:
    names = [p for p in path if isinstance(p, str)]
    assert names[-1] in message and names[0] in message, (path, message)


def _assert_runnable(value, where: str = "recipe") -> None:
    """Every value in range for a run: finite floats, counts in int32, paths the OS takes,
    ``~`` expanded, and seeds torch and numpy accept."""
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _assert_runnable(getattr(value, name), f"{where}.{name}")
        if isinstance(value, TrainSpec):
            _seeds_work(value.seed)
        if isinstance(value, Recipe) and value.self_distill is not None:
            _seeds_work(value.train.seed + value.self_distill.generations)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _assert_runnable(item, f"{where}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_path_text(key)
            _assert_runnable(item, f"{where}.{key}")
    elif isinstance(value, float):
        assert math.isfinite(value), where
    elif isinstance(value, int) and not isinstance(value, bool):
        seed = where.endswith(".seed")  # also checked by seed_everything itself
        assert 0 <= value < SEED_LIMIT if seed else -2**31 <= value <= MAX_COUNT, where
    elif isinstance(value, (str, Path)):
        check_path_text(str(value))
        assert not (isinstance(value, Path) and str(value).startswith("~")), where


def _seeds_work(seed: int) -> None:
    state = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    try:
        seed_everything(seed)
    finally:
        random.setstate(state[0])
        np.random.set_state(state[1])
        torch.random.set_rng_state(state[2])


def test_hostile_bases_are_valid(tmp_path):
    for base in BASES:
        _write_hostile(tmp_path / "recipe.toml", base, None)
        _assert_runnable(load_recipe(tmp_path / "recipe.toml"))


@settings(max_examples=250, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=hostile_recipes())
def test_hostile_values_load_runnable_or_name_their_field(tmp_path, case):
    recipe, path, deep = case
    file = tmp_path / "recipe.toml"
    _write_hostile(file, recipe, deep)
    try:
        loaded = load_recipe(file)
    except RecipeError as err:
        message = str(err)
        assert message.startswith(f"{file}: ") and "\n  - " in message
        _assert_names(message, path)
    else:
        _assert_runnable(loaded)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=hostile_recipes())
def test_the_cli_check_refuses_hostile_values_naming_the_field(tmp_path, capsys, case):
    recipe, path, deep = case
    file = tmp_path / "recipe.toml"
    _write_hostile(file, recipe, deep)
    code = main(["run", str(file), "--check"])
    out = capsys.readouterr()
    assert code in (0, 1) and "Traceback" not in out.err
    if code == 1 and "a run would hit" in out.err:
        # the schema took it; --check's reading of the disk found what this machine lacks
        # (the test's made-up files, a dataset's package)
        _assert_runnable(load_recipe(file))
    elif code == 1:
        assert out.err.startswith(f"distill run: error: {file}: ")
        _assert_names(out.err, path)
    else:
        _assert_runnable(load_recipe(file))
