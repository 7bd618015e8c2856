"""TOML recipes: a validated schema, a loader with readable errors, and the runner."""

from distill.recipes.loader import RecipeError, load_recipe, parse_recipe
from distill.recipes.schema import Recipe

__all__ = ["Recipe", "RecipeError", "load_recipe", "parse_recipe"]
