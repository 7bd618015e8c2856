"""``distill run --check``: what a run would hit, found without training anything.

The schema already refused malformed values; this reads the disk: the data source (paths,
columns, classes, input shape: each format's cheap ``check``), every saved model the recipe
names (its folder, and whether its input shape and classes fit the data) and, for a language
model's corpus and a teacher in a local folder, the text through that teacher's tokenizer (no
model is loaded: tokenizing is seconds, and is where a corpus too short for one block fails).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distill.artifacts import ArtifactError, read_config
from distill.data.formats import DATA_FORMATS, DataCheck
from distill.recipes.data_specs import format_options, load_data_table, reads_text
from distill.recipes.model_specs import ModuleSpec, VisionSpec
from distill.recipes.schema import Recipe, SavedSpec, TeacherEnsemble


class RecipeCheckError(ValueError):
    """The recipe validated, but what it names on disk would fail the run."""


def check_recipe(recipe: Recipe, source: str = "<recipe>") -> DataCheck:
    """Check the recipe's data and saved models; return what the data check found, or raise
    one :class:`RecipeCheckError` listing every problem."""
    problems: list[str] = []
    found: DataCheck | None = None
    try:
        found = DATA_FORMATS.get(recipe.data.format).check(format_options(recipe.data))
    except (ValueError, OSError) as err:
        problems.append(f"[data]: {err}")
    if found is not None:
        problems += _check_tokenized(recipe)
    for where, spec in _saved_models(recipe):
        problems += _check_saved(where, spec, found)
    for where, spec in (("[teacher]", recipe.teacher), ("[student]", recipe.student)):
        problems += _check_family(where, spec)
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise RecipeCheckError(f"{source}: {len(problems)} problem(s) a run would hit:\n{lines}")
    assert found is not None
    return found


def _check_tokenized(recipe: Recipe) -> list[str]:
    """A language model's corpus through the local teacher's tokenizer, as the run will read
    it (cut into blocks: too little text fails only there). A hub id is left to the run
    (``--check`` downloads nothing); labelled text cannot fail at tokenizing."""
    model = getattr(recipe.teacher, "model", None)
    if (recipe.resolved_task != "causal-lm" or not reads_text(recipe.data) or model is None
            or not Path(str(model)).is_dir()):
        return []
    from distill.hf import load_tokenizer

    try:
        tokenizer = load_tokenizer(model, trust_remote_code=getattr(recipe.teacher, "trust_code",
                                                                    False))
    except (ValueError, OSError) as err:
        return [f"[teacher] tokenizer: {err}"]
    problems = []
    try:
        load_data_table(recipe.data, tokenizer)
    except (ValueError, OSError) as err:
        problems.append(f"[data] read by the teacher's tokenizer: {err}")
    problems += _student_tokens(recipe, Path(str(model)), tokenizer)
    from distill.recipes.lm_steps import cut_problem

    cut = cut_problem(recipe)
    problems += [cut] if cut else []
    return problems + _export_problems(recipe, Path(str(model)), tokenizer)


def _export_problems(recipe: Recipe, teacher: Path, tokenizer: Any) -> list[str]:
    """``[export] gguf``: the package is there, and the student (the teacher's family, or
    another model's config) and tokenizer can be written."""
    if not recipe.export.gguf:
        return []
    import importlib.util
    import json
    from types import SimpleNamespace

    from distill.lm.gguf_export import gguf_problems
    from distill.recipes.schema import HFStudent

    if importlib.util.find_spec("gguf") is None:
        return ["[export] gguf needs the gguf package: pip install 'distill[hf]'"]
    student = recipe.student
    folder = Path(str(student.model)) if isinstance(student, HFStudent) else teacher
    try:
        config = SimpleNamespace(**json.loads((folder / "config.json").read_text()))
    except (OSError, ValueError, TypeError):
        return []  # a hub id, or a folder the model checks name
    return [f"[export] {p}" for p in gguf_problems(config, tokenizer)]


def _student_tokens(recipe: Recipe, teacher: Path, tokenizer: Any) -> list[str]:
    """A student whose token ids would mean other strings, found from files alone: another
    model's tokenizer, or a config that changes the vocabulary or a special token's id."""
    from distill.lm.tokenizers import tokenizer_differences
    from distill.recipes.schema import HFScratchStudent, HFStudent

    student = recipe.student
    differences: list[str] = []
    if isinstance(student, HFStudent) and Path(str(student.model)).is_dir():
        from distill.hf import load_tokenizer

        try:
            other = load_tokenizer(student.model, trust_remote_code=student.trust_code)
        except (ValueError, OSError) as err:
            return [f"[student] tokenizer: {err}"]
        differences = tokenizer_differences(tokenizer, other)
    elif isinstance(student, HFScratchStudent):
        import json

        try:
            config = json.loads((teacher / "config.json").read_text())
        except (OSError, ValueError):
            return []  # the teacher's own check names it
        keys = {"vocab_size": "vocabulary size", "bos_token_id": "bos_token_id",
                "eos_token_id": "eos_token_id", "pad_token_id": "pad_token_id"}
        differences = [f"{said}: teacher {config.get(key)}, student {student.config[key]}"
                       for key, said in keys.items()
                       if key in student.config and config.get(key) is not None
                       and student.config[key] != config.get(key)]
    if not differences:
        return []
    return ["[student]: teacher and student must share one tokenizer for token-level "
            f"distillation; {'; '.join(differences)}"]


def _check_family(where: str, spec: Any) -> list[str]:
    """A vision or module table: its checkpoint exists, its factory imports (trusted)."""
    problems = []
    weights = getattr(spec, "weights", None)
    if isinstance(spec, VisionSpec | ModuleSpec) and weights is not None and not Path(
            weights).is_file():
        problems.append(f"{where} weights {str(weights)!r}: no such file")
    if isinstance(spec, ModuleSpec):  # trust_code = true: the schema refused it otherwise
        from distill.students.user import resolve_factory

        try:
            resolve_factory(spec.factory)
        except (ValueError, ImportError) as err:
            problems.append(f"{where} factory: {err}")
    return problems


def _saved_models(recipe: Recipe) -> list[tuple[str, SavedSpec]]:
    out: list[tuple[str, SavedSpec]] = []
    if isinstance(recipe.teacher, SavedSpec):
        out.append(("[teacher]", recipe.teacher))
    if isinstance(recipe.teacher, TeacherEnsemble):
        out += [(f"[teacher.members] #{i}", m) for i, m in enumerate(recipe.teacher.members, 1)
                if isinstance(m, SavedSpec)]
    if isinstance(recipe.student, SavedSpec):
        out.append(("[student]", recipe.student))
    return out


def _check_saved(where: str, spec: SavedSpec, data: DataCheck | None) -> list[str]:
    path = Path(spec.path)
    if not path.exists():
        return [f"{where} path {str(path)!r}: no such folder"]
    if (path / "model.onnx").is_file():
        return []  # an exported model: its input is checked when it first runs
    try:
        config = read_config(path)
    except ArtifactError as err:
        return [f"{where}: {err}"]
    if data is None:
        return []
    kwargs: dict[str, Any] = config.get("kwargs", {})
    problems = []
    classes = kwargs.get("num_classes")
    if isinstance(classes, int) and classes != data.num_classes:
        problems.append(f"{where} {path.name} predicts {classes} classes; the data has "
                        f"{data.num_classes} ({', '.join(data.class_names[:10])})")
    shape = kwargs.get("input_shape")
    if (isinstance(shape, list) and data.input_shape is not None
            and tuple(shape) != tuple(data.input_shape)):
        problems.append(f"{where} {path.name} takes inputs of shape {tuple(shape)}; the data's "
                        f"are {tuple(data.input_shape)}")
    return problems
