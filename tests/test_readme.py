"""The README's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # the examples write to /tmp/<name>: keep the test's files in its own folder
    code = re.sub(r"/tmp/([\w-]+)", lambda m: str(tmp_path / m.group(1)), BLOCKS[index])
    exec(compile(code, f"README.md example {index + 1}", "exec"), {"__name__": "__readme__"})


RECIPES = [block for block in re.findall(r"```toml\n(.*?)```", README.read_text(), flags=re.S)
           if "[data]" in block]  # whole recipes (the others are fragments of one)


def test_readme_has_recipes():
    assert len(RECIPES) >= 2


@pytest.mark.parametrize("index", range(len(RECIPES)))
def test_readme_recipe_is_valid(index):
    """Each whole recipe in the README passes the schema as written (its files are the
    reader's, so --check's disk checks are not run here)."""
    from distill.recipes import parse_recipe
    from distill.recipes.loader import tomllib

    parse_recipe(tomllib.loads(RECIPES[index]), source=f"README recipe {index + 1}")
