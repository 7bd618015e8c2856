"""Recipe validation: every mistake is named with its table, field and the allowed values."""

from __future__ import annotations

from pathlib import Path

import pytest

from distill.recipes import Recipe, RecipeError, load_recipe, parse_recipe

REPO = Path(__file__).resolve().parents[2]

MINIMAL = {
    "data": {"dataset": "digits"},
    "teacher": {"arch": "cnn", "channels": [8]},
    "student": {"arch": "mlp", "hidden": [8]},
}


def _with(**changes):
    data = {k: dict(v) for k, v in MINIMAL.items()}
    for dotted, value in changes.items():
        section, _, field = dotted.partition("__")
        if field:
            data.setdefault(section, {})[field] = value
        else:
            data[section] = value
    return data


def _error(data) -> str:
    with pytest.raises(RecipeError) as info:
        parse_recipe(data, "r.toml")
    return str(info.value)


def test_minimal_recipe_gets_defaults():
    recipe = parse_recipe(MINIMAL)
    assert isinstance(recipe, Recipe)
    assert recipe.loss.temperature > 0 and 0 <= recipe.loss.alpha <= 1
    assert recipe.baseline.enabled is False  # only when asked for


def test_unknown_field_is_named_with_allowed_fields_and_a_suggestion():
    message = _error(_with(train__lerning_rate=0.1, student__hiden=[3]))
    assert "[train]: unknown field 'lerning_rate'" in message
    assert "[student]: unknown field 'hiden'" in message
    assert "did you mean 'hidden'?" in message
    assert "allowed: arch, dropout, hidden" in message
    assert message.startswith("r.toml: 2 problems")


def test_unknown_section_is_named():
    message = _error(_with(traning={"epochs": 3}))
    assert "unknown section 'traning'" in message and "did you mean 'train'?" in message


def test_bad_choice_lists_the_allowed_values():
    message = _error(_with(train__optimizer="adamx"))
    assert "[train] optimizer" in message
    assert "'adamw', 'adam' or 'sgd'" in message and "'adamx'" in message


def test_out_of_range_and_wrong_type_values():
    message = _error(_with(loss={"temperature": 0, "alpha": 1.5}, train={"epochs": "ten"}))
    assert "[loss] temperature" in message and "greater than 0" in message
    assert "[loss] alpha" in message and "less than or equal to 1" in message
    assert "[train] epochs" in message


def test_unknown_architecture_and_missing_fields():
    message = _error(_with(student={"arch": "resnet"}))
    assert "[student]: arch 'resnet' is not supported (allowed: 'mlp', 'cnn', 'saved')" in message
    message = _error({"teacher": {"arch": "cnn"}, "student": {"arch": "mlp"}})
    assert "missing required field 'data'" in message
    assert "[teacher]: missing required field 'channels'" in message


def test_nested_teacher_train_errors_name_the_full_table():
    message = _error(_with(teacher={"arch": "cnn", "channels": [8], "train": {"epochs": 0}}))
    assert "[teacher.train] epochs" in message


def test_toml_syntax_error_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[data\ndataset = 'digits'\n")
    with pytest.raises(RecipeError, match="bad.toml: not valid TOML"):
        load_recipe(bad)
    with pytest.raises(RecipeError, match="does not exist"):
        load_recipe(tmp_path / "nope.toml")


def test_relative_paths_resolve_against_the_recipe_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    recipe_file = tmp_path / "sub" / "r.toml"
    recipe_file.write_text(
        '[data]\ndataset = "digits"\n[teacher]\npath = "../teacher"\n'
        '[student]\narch = "mlp"\n'
    )
    recipe = load_recipe(recipe_file)
    assert recipe.teacher.path == (tmp_path / "teacher").resolve()


@pytest.mark.parametrize("path", sorted((REPO / "recipes").glob("*.toml")), ids=lambda p: p.name)
def test_shipped_recipes_are_valid(path):
    load_recipe(path)

