"""Hostile values a review found: each used to traceback, name no field, or pass `--check` and
fail only at run time. Now each is a RecipeError naming its table and field, or a value a run
can use."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch

from distill.cli import main
from distill.recipes import RecipeError, load_recipe, parse_recipe
from distill.recipes.values import MAX_COUNT, MAX_NESTING, SEED_LIMIT
from distill.runtime import seed_everything

NO_USER = "~distill-no-such-user"
IMAGE = """\
name = "hostile"
[data]
dataset = "digits"
[teacher]
arch = "cnn"
channels = [8]
outputs = "cached"
[student]
arch = "mlp"
hidden = [8]
[train]
optimizer = "adamw"
"""
HF = {
    "data": {"dataset": "rotten-tomatoes"},
    "teacher": {"arch": "hf", "model": "org/teacher"},
    "student": {"arch": "hf-scratch", "config": {"hidden_size": 64}},
    "loss": {"hidden": {"layers": {"0": 1}}},
}


def _load(tmp_path, text: str) -> str:
    """The RecipeError a recipe file gets (it must get one)."""
    path = tmp_path / "recipe.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    return str(info.value)


def _parse(data: dict) -> str:
    with pytest.raises(RecipeError) as info:
        parse_recipe(data, "r.toml")
    return str(info.value)


def _toml(text: str) -> str:
    """A TOML basic string holding ``text`` (NUL written as an escape)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\0", "\\u0000") + '"'


# (where the field is in IMAGE, as TOML lines to add, and the label an error must carry)
PATH_FIELDS = {
    "[data] root": lambda v: IMAGE.replace('dataset = "digits"', f'dataset = "digits"\nroot = {v}'),
    "[teacher] cache_path": lambda v: IMAGE.replace('outputs = "cached"',
                                                     f'outputs = "cached"\ncache_path = {v}'),
    "[teacher] path": lambda v: IMAGE.replace('arch = "cnn"\nchannels = [8]', f"path = {v}"),
    "[student] path": lambda v: IMAGE.replace('arch = "mlp"\nhidden = [8]', f"path = {v}"),
}


@pytest.mark.parametrize("field", PATH_FIELDS)
def test_an_unexpandable_home_is_an_error_naming_the_path_field(tmp_path, field):
    # before: Path.expanduser's RuntimeError("Could not determine home directory.") escaped
    message = _load(tmp_path, PATH_FIELDS[field](_toml(f"{NO_USER}/x")))
    assert f"{field}: cannot expand '{NO_USER}'" in message


def test_home_expands_in_every_path_field(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    path = tmp_path / "r.toml"
    path.write_text(PATH_FIELDS["[student] path"](_toml("~/student")).replace(
        'dataset = "digits"', 'dataset = "digits"\nroot = "~/data"'))
    recipe = load_recipe(path)
    assert recipe.student.path == tmp_path / "student" and recipe.data.root == tmp_path / "data"
    data = {**HF, "teacher": {"arch": "hf", "model": "~/teacher"}}
    assert parse_recipe(data).teacher.model == str(tmp_path / "teacher")


@pytest.mark.parametrize("value", ["a\0b", "x" * 256, "é" * 128, "/".join(["y" * 200] * 21)],
                         ids=["nul", "256-byte-name", "256-byte-utf8-name", "4221-byte-path"])
@pytest.mark.parametrize("field", PATH_FIELDS)
def test_nul_bytes_and_over_long_names_in_paths_name_the_field(tmp_path, field, value):
    # before: "embedded null byte" from the OS, naming no field; over-long names passed --check
    message = _load(tmp_path, PATH_FIELDS[field](_toml(value)))
    assert f"{field}: " in message
    assert "NUL" in message or "bytes" in message


@pytest.mark.parametrize(("section", "field", "value"), [
    ("", "name", "run\0name"), ("train", "device", "cu\0da"), ("train", "device", "gpu"),
    ("teacher", "model", "org/\0model"), ("teacher", "model", "m" * 300),
    ("student", "config", {"hidden_act": "ge\0lu"}), ("student", "config", {"bad key": 1}),
    ("loss", "hidden", {"layers": {"0": "encoder\0"}}),
])
def test_nul_bytes_in_names_are_refused_with_the_field(section, field, value):
    data = {k: dict(v) for k, v in HF.items()}
    (data.setdefault(section, {}) if section else data)[field] = value
    message = _parse(data)
    assert (f"[{section}" if section else f"top level {field}") in message and field in message
    assert "\0" not in message  # shown escaped, never raw


def test_an_over_long_recipe_file_name_is_a_recipe_error(tmp_path):
    for name in ("x" * 300, "a\0b"):
        with pytest.raises(RecipeError, match="recipe file"):
            load_recipe(tmp_path / name)


def _nested(depth: int, inline: bool) -> str:
    return "{a = " * depth + "1" + "}" * depth if inline else "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 500, 1000])
@pytest.mark.parametrize("inline", [False, True], ids=["arrays", "inline-tables"])
def test_deep_nesting_in_toml_is_refused_naming_the_field(tmp_path, depth, inline):
    # before: tomllib's RecursionError (about 500 deep)
    message = _load(tmp_path, IMAGE + f"lr = {_nested(depth, inline)}\n")
    assert "[train] lr" in message and f"nested more than {MAX_NESTING} deep" in message


def test_deep_tables_and_python_data_are_refused_without_recursion(tmp_path):
    message = _load(tmp_path, IMAGE + "[" + ".".join(["t"] * 1000) + "]\nx = 1\n")
    assert "top level t: tables and arrays nested" in message
    deep: list = []
    for _ in range(100_000):  # far past the interpreter's recursion limit
        deep = [deep]
    data = {**HF, "student": {"arch": "hf-scratch", "config": {"hidden_size": deep}}}
    assert "[student.config] hidden_size: tables and arrays nested" in _parse(data)
    data = {**HF, "teacher": {"members": [{"path": "a"}, {"path": deep}]}}
    assert "[teacher.members.[1]] path: tables and arrays nested" in _parse(data)


def _set(field: str, value: str) -> str:
    """IMAGE with ``[table] name = value`` (TOML text) added."""
    table, _, name = field[1:].partition("] ")
    if table == "train":
        return IMAGE + f"{name} = {value}\n"
    if table == "teacher":
        return IMAGE.replace("channels = [8]\n", f"channels = [8]\n{name} = {value}\n")
    return IMAGE + f"[{table}]\n{name} = {value}\n"


@pytest.mark.parametrize("value", ["inf", "-inf", "nan"])
@pytest.mark.parametrize("field", ["[train] lr", "[train] weight_decay", "[train] warmup_ratio",
                                   "[train] grad_clip", "[loss] temperature", "[loss] alpha",
                                   "[teacher] dropout", "[teacher.train] lr"])
def test_non_finite_floats_are_refused(tmp_path, field, value):
    # before: lr = inf and temperature = inf passed --check
    assert f"{field}: Input should be a finite number" in _load(tmp_path, _set(field, value))


def test_non_finite_values_in_a_hugging_face_config_are_refused():
    for value, words in ((float("inf"), "finite"), (2**31, "integer"), (10**30, "integer")):
        data = {**HF, "student": {"arch": "hf-scratch", "config": {"layer_norm_eps": value}}}
        message = _parse(data)
        assert message.count("\n  - ") == 1  # one problem, not one per type it is not
        assert "[student.config] layer_norm_eps: " in message and words in message


@pytest.mark.parametrize(("field", "value"), [
    ("epochs", 10**30), ("epochs", 2**63), ("batch_size", MAX_COUNT + 1), ("accumulate", 2**64),
    ("threads", 10**6), ("seed", 10**23), ("seed", SEED_LIMIT), ("seed", -1),
])
def test_integers_beyond_what_a_run_takes_are_refused(tmp_path, field, value):
    # before: seed = 10**23 passed --check and failed in torch.manual_seed after the teacher
    message = _load(tmp_path, _set(f"[train] {field}", str(value)))
    assert f"[train] {field}: Input should be" in message


def test_the_largest_accepted_seed_and_counts_run():
    data = {**HF, "train": {"seed": SEED_LIMIT - 1, "epochs": MAX_COUNT, "batch_size": MAX_COUNT}}
    recipe = parse_recipe(data)
    state = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    try:
        seed_everything(recipe.train.seed)
        seed_everything(recipe.train.seed + MAX_COUNT)  # self-distillation's seed + generation
    finally:
        random.setstate(state[0])
        np.random.set_state(state[1])
        torch.random.set_rng_state(state[2])
    assert recipe.train.epochs * MAX_COUNT < 2**63  # any epochs × steps fits the scheduler


def test_a_relative_path_that_loops_or_grows_too_long_names_the_field(tmp_path):
    os.symlink("loop", tmp_path / "loop")
    message = _load(tmp_path, PATH_FIELDS["[student] path"](_toml("loop/x")))
    assert "[student] path: " in message and "relative to the recipe's folder" in message
    deep = tmp_path / ("d" * 200)
    deep.mkdir()
    (deep / "r.toml").write_text(PATH_FIELDS["[data] root"](_toml("/".join(["e" * 250] * 16))))
    with pytest.raises(RecipeError, match=r"\[data\] root: is \d+ bytes long"):
        load_recipe(deep / "r.toml")


def test_stage_kinds_are_named_as_kind():
    data = {**HF, "stages": [{"kind": "shrink"}]}
    assert "[stages.[0]]: kind 'shrink' is not supported (allowed: 'prune'," in _parse(data)


@pytest.mark.parametrize("line", ["lr = inf", "seed = 100000000000000000000000",
                                  "epochs = 1000000000000000000000000000000", "weight_decay = inf",
                                  f"lr = {_nested(1000, False)}", f"device = {_toml('a' * 300)}"])
def test_run_check_refuses_what_run_would_hit(tmp_path, capsys, line):
    path = tmp_path / "recipe.toml"
    path.write_text(IMAGE + line + "\n")
    assert main(["run", str(path), "--check"]) == 1
    err = capsys.readouterr().err
    field = line.partition(" =")[0]
    assert err.startswith("distill run: error: ") and f"[train] {field}" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("name", ["..", "/etc", "../elsewhere", "a/b"])
def test_a_recipe_name_stays_one_folder_inside_runs(name):
    # the CLI writes runs/<name>: an absolute or dotted name would leave runs/
    assert "top level name: names the run folder" in _parse({**HF, "name": name})
