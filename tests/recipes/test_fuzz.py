"""Property-based: whatever a recipe file holds, loading it (and `distill run --check`) ends in
a valid recipe or a RecipeError that names where the problem is, never a traceback."""

from __future__ import annotations

import copy

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from distill.cli import main  # noqa: E402
from distill.recipes import RecipeError  # noqa: E402
from distill.recipes.loader import load_recipe  # noqa: E402

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
