"""The TOML recipe format, validated by pydantic: every field typed, every unknown field refused."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import (
    Discriminator,
    Field,
    NonNegativeFloat,
    Tag,
    field_validator,
    model_validator,
)

from distill.engine.config import TrainSettings
from distill.recipes.data_specs import DataSpec, reads_text
from distill.recipes.hf_student_specs import HFLayersStudent, HFPrunedStudent, HFScratchStudent
from distill.recipes.loss_specs import LossSpec
from distill.recipes.model_specs import ModuleSpec, VisionSpec
from distill.recipes.output_specs import EvaluateSpec, ExportSpec
from distill.recipes.stage_specs import StageSpec
from distill.recipes.values import (
    MAX_COUNT,
    ConfigValue,
    Count,
    FilePath,
    Fraction,
    Identifier,
    NameOrPath,
    NonNegativeCount,
    RunName,
    Section,
)


class TrainSpec(TrainSettings, Section):
    """Optimisation settings: ``[train]``, ``[teacher.train]`` and ``[baseline.train]``; the
    engine's own :class:`TrainSettings`, with more epochs by default."""

    epochs: Count = 10


class MLPSpec(Section):
    arch: Literal["mlp"]
    hidden: list[Count] = [256]
    dropout: Fraction = 0.0


class CNNSpec(Section):
    arch: Literal["cnn"]
    channels: list[Count] = Field(min_length=1)
    convs_per_stage: Count = 1
    head: Literal["gap", "flatten"] = "gap"
    hidden: NonNegativeCount = 0
    dropout: Fraction = 0.0


class Trust(Section):
    trust_code: bool = False
    """Run code the model names (a ``module:function`` factory, a Hugging Face model's own
    modeling files): only for folders and hub ids whose source you trust."""


class SavedSpec(Trust):
    """A model saved by ``distill.save`` (a folder with config.json + model.safetensors)."""

    arch: Literal["saved"] = "saved"
    path: FilePath
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    """The weights file's sha256: any other file is refused before it is read."""
    preprocessing: dict[Identifier, ConfigValue | list[ConfigValue]] | None = None
    """How the model's inputs were prepared, for a model trained elsewhere that does not record
    it (``{kind = "image", size = [28, 28], channels = "L", mean = [0.5], std = [0.5]}``): a
    run whose data is prepared otherwise is refused before anything trains."""


class TeacherOutputs(Section):
    outputs: Literal["online", "precomputed", "cached"] = "online"
    """``online``: run the teacher on every (augmented) batch; ``precomputed``: run it once over
    the training set and keep its outputs in memory; ``cached``: the same, stored on disk
    (checksummed, resumable, reused by later runs), dense or ``top_k``."""
    top_k: Count | None = None
    """With ``outputs = "cached"``: keep the k largest logits and the leftover mass."""
    samples: Count | None = None
    """With ``outputs = "cached"``: keep n tokens drawn from the teacher at the loss's
    temperature (sampled targets: an unbiased forward KL). With ``top_k`` too (hybrid): the k
    most likely tokens exactly, and the n draws from the rest."""
    sampler: Literal["stratified", "multinomial"] = "stratified"
    """With ``samples``: one draw per n-th of the teacher's cumulative distribution
    (``stratified``, less noisy) or n independent draws."""
    cache_dtype: Literal["float16", "float32"] = "float16"
    cache_path: FilePath | None = None
    """Where the cached outputs live (default: inside distill's cache folder)."""

    @model_validator(mode="after")
    def _cache_options(self) -> TeacherOutputs:
        if self.outputs != "cached":
            given = [k for k in ("top_k", "samples", "cache_path")
                     if getattr(self, k) is not None]
            if given:
                raise ValueError(
                    f"{', '.join(given)} only apply with outputs = 'cached' "
                    f"(outputs is '{self.outputs}')"
                )
        return self


class Trained(Section):
    """A teacher trained by the recipe itself, and reused from the cache when unchanged."""

    cache: bool = True
    train: TrainSpec = TrainSpec()


class TeacherMLP(MLPSpec, Trained, TeacherOutputs):
    pass


class TeacherCNN(CNNSpec, Trained, TeacherOutputs):
    pass


class TeacherSaved(SavedSpec, TeacherOutputs):
    pass


class TeacherVision(VisionSpec, Trained, TeacherOutputs):
    """A transformers vision family: trained by the recipe unless ``weights`` are given."""


class TeacherModule(ModuleSpec, Trained, TeacherOutputs):
    """The user's own module: trained by the recipe unless ``weights`` are given."""


class HFTeacher(TeacherOutputs, Trust):
    """A Hugging Face model (hub id or local folder), fine-tuned on the recipe's training data
    first when ``[teacher.finetune]`` is given (then cached, like a trained teacher)."""

    arch: Literal["hf"]
    model: NameOrPath
    task: Literal["sequence-classification", "sentence-embedding", "causal-lm"] = (
        "sequence-classification")
    """``sentence-embedding``: the encoder's mean-pooled, normalised output (as
    sentence-transformers' MiniLM models), distilled with ``[loss] kind = "embedding"``;
    ``causal-lm``: a generative model (set for you by the recipe's ``task = "causal-lm"``)."""
    finetune: TrainSpec | None = None
    cache: bool = True
    attention: Literal["eager", "sdpa"] | None = None
    """Attention kernel; ``[loss.attention]`` picks ``eager`` itself (it reads the maps)."""


class HFStudent(Trust):
    """A pretrained Hugging Face model of its own (it must predict the teacher's classes)."""

    arch: Literal["hf"]
    model: NameOrPath


class PrunedStudent(Section):
    """The teacher itself, pruned, then recovered by distillation from its unpruned self.

    ``structured`` removes channels/neurons (Hugging Face teachers: MLP neurons), ``magnitude``
    zeros the smallest weights, ``2:4`` keeps two of every four. ``steps`` > 1 prunes and
    recovers in turns ([train] epochs are shared among the steps).
    """

    arch: Literal["pruned"]
    method: Literal["structured", "magnitude", "2:4"] = "structured"
    ratio: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.5
    importance: Literal["magnitude", "activation", "taylor"] = "magnitude"
    steps: Count = 1


class MemberMLP(MLPSpec, Trained):
    pass


class MemberCNN(CNNSpec, Trained):
    pass


def _data_name(data: Any) -> str:
    if data.format == "builtin":
        return f"dataset = '{data.dataset}'"
    return f"format = '{data.format}'"


def _arch_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        if "arch" in value:
            return value["arch"]
        if "members" in value:
            return "ensemble"
        return "saved" if "path" in value else None
    return getattr(value, "arch", None)


def _by_arch(**choices: type) -> Any:
    """A union of tables told apart by their ``arch`` (or, for saved models, ``path``)."""
    return Annotated[
        Union[tuple(Annotated[spec, Tag(arch)] for arch, spec in choices.items())],  # noqa: UP007
        Discriminator(_arch_tag),
    ]


MemberSpec = _by_arch(mlp=MemberMLP, cnn=MemberCNN, saved=SavedSpec)


class TeacherEnsemble(TeacherOutputs):
    """Several teachers combined: ``[[teacher.members]]`` tables, each trained or saved."""

    arch: Literal["ensemble"] = "ensemble"
    members: list[MemberSpec] = Field(min_length=2)
    combine: Literal["probs", "logits"] = "probs"
    weights: list[NonNegativeFloat] | None = None

    @model_validator(mode="after")
    def _weights_match(self) -> TeacherEnsemble:
        if self.weights is not None and len(self.weights) != len(self.members):
            raise ValueError(
                f"{len(self.weights)} weights for {len(self.members)} members: give one weight "
                "per member, or none for equal weights"
            )
        return self


TeacherSpec = _by_arch(mlp=TeacherMLP, cnn=TeacherCNN, saved=TeacherSaved,
                       ensemble=TeacherEnsemble, hf=HFTeacher, module=TeacherModule,
                       **{"hf-vision": TeacherVision})
StudentSpec = _by_arch(mlp=MLPSpec, cnn=CNNSpec, saved=SavedSpec, hf=HFStudent,
                       pruned=PrunedStudent, module=ModuleSpec,
                       **{"hf-layers": HFLayersStudent, "hf-scratch": HFScratchStudent,
                          "hf-pruned": HFPrunedStudent, "hf-vision": VisionSpec})
HF_STUDENTS = (HFStudent, HFLayersStudent, HFScratchStudent, HFPrunedStudent)



class BaselineSpec(Section):
    """The same student trained on hard labels only, to show what distillation added."""

    enabled: bool = True
    train: TrainSpec | None = None


class SelfDistillSpec(Section):
    """The student's own architecture as its teacher: no ``[teacher]`` table.

    ``born-again``: generation 1 learns from labels, each later generation from the one
    before; ``ema``: the teacher is a moving average of the student's weights.
    """

    method: Literal["born-again", "ema"]
    generations: Annotated[int, Field(ge=2, le=MAX_COUNT)] = 2
    decay: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.99


class Recipe(Section):
    name: RunName | None = None
    task: str | None = None
    """What the models do: ``classification`` (the default), ``causal-lm`` (a generative
    language model, scored by perplexity) or ``sentence-embedding``; by default the one the
    data and teacher imply."""
    data: DataSpec
    teacher: TeacherSpec | None = None
    self_distill: SelfDistillSpec | None = None
    student: StudentSpec
    loss: LossSpec = LossSpec()
    train: TrainSpec = TrainSpec()
    baseline: BaselineSpec = BaselineSpec(enabled=False)
    evaluate: EvaluateSpec = EvaluateSpec()
    export: ExportSpec = ExportSpec()
    stages: list[StageSpec] = []
    """A pipeline after the student is distilled: ``[[stages]]`` tables, run in order, each
    checkpointed in the run folder (``distill run --resume`` skips the finished ones)."""

    @model_validator(mode="after")
    def _consistent(self) -> Recipe:
        if (self.teacher is None) == (self.self_distill is None):
            raise ValueError(
                "give a [teacher] table, or a [self_distill] table for a student that is its "
                "own teacher (not both)"
                if self.teacher is None
                else "[self_distill] trains the student's own architecture as its teacher; "
                "remove the [teacher] table"
            )
        if self.data.labeled == 0 and (self.baseline.enabled or self.self_distill is not None):
            raise ValueError(
                "[data] labeled = 0 leaves no labels to train "
                + ("the [baseline] on; set [baseline] enabled = false"
                   if self.self_distill is None else "the first [self_distill] generation on")
            )
        self._task_consistent()
        self._hf_consistent()
        self._pruned_consistent()
        self._stages_consistent()
        if self.teacher is None:
            return self
        outputs = self.teacher.outputs
        if outputs in ("precomputed", "cached") and self.train.augment != "none":
            raise ValueError(
                f"[teacher] outputs = '{outputs}' cannot follow [train] augment = "
                f"'{self.train.augment}': stored outputs are one per image, augmented views "
                "differ every epoch; use outputs = 'online' or augment = 'none'"
            )
        return self

    @field_validator("task")
    @classmethod
    def _known_task(cls, value: str | None) -> str | None:
        from distill.tasks import TASKS

        return None if value is None else TASKS.canonical(value)

    @property
    def resolved_task(self) -> str:
        """The task named, or the one the data and teacher imply."""
        if self.task is not None:
            return self.task
        if self.data.format == "text-corpus":
            return "causal-lm"
        if isinstance(self.teacher, HFTeacher) and self.teacher.task != "sequence-classification":
            return self.teacher.task
        return "classification"

    def _task_consistent(self) -> None:
        task = self.resolved_task
        lm_data = self.data.format == "text-corpus"
        if (task == "causal-lm") != lm_data:
            raise ValueError(
                "task = 'causal-lm' learns next tokens from [data] format = 'text-corpus'"
                if task == "causal-lm" else
                f"[data] format = 'text-corpus' is next-token text: set task = 'causal-lm' "
                f"(not '{task}')")
        samples = getattr(self.teacher, "samples", None)
        if samples is not None and (task != "causal-lm" or self.loss.divergence != "forward_kl"):
            raise ValueError("[teacher] samples (sampled targets) estimate the forward KL of "
                             "a causal-lm recipe's token loss: use task = 'causal-lm' and "
                             "[loss] divergence = 'forward' (or cache dense or top_k targets)")
        if task != "causal-lm":
            if self.export.gguf:
                raise ValueError("[export] gguf writes causal language models; this recipe's "
                                 f"task is '{task}'")
            if isinstance(self.student, HFPrunedStudent):
                raise ValueError("[student] arch = 'hf-pruned' cuts a causal language model; a "
                                 "classifier is pruned with arch = 'pruned'")
            return
        if "batch_sizes" not in self.evaluate.model_fields_set:
            self.evaluate = self.evaluate.model_copy(update={"batch_sizes": [1, 8]})
        if not isinstance(self.teacher, HFTeacher):
            raise ValueError("task = 'causal-lm' needs a Hugging Face causal language model as "
                             "[teacher] (arch = 'hf', model = <folder or hub id>)")
        if self.teacher.task == "sequence-classification":
            self.teacher.task = "causal-lm"  # said once, at the top of the recipe
        given = [name for name, on in (("[[stages]]", self.stages),
                                       ("[loss] kind = 'embedding'",
                                        self.loss.kind == "embedding"),
                                       ("[data] labeled", self.data.labeled is not None))
                 if on]
        if given:
            raise ValueError(f"task = 'causal-lm' recipes do not take {', '.join(given)} yet")

    def _stages_consistent(self) -> None:
        if not self.stages:
            return
        if self.teacher is None or self.loss.kind != "kd":
            raise ValueError("[[stages]] follow a student distilled from a [teacher] with "
                             "[loss] kind = 'kd'")
        hf = isinstance(self.teacher, HFTeacher)
        done = None  # the stage after which the student can no longer train
        for i, stage in enumerate(self.stages, 1):
            where = f"[[stages]] #{i} (kind = '{stage.kind}')"
            qat_then_export = (done is not None and done[1] == "quantize 'qat'" and hf
                               and stage.kind == "export" and stage.int8 != "none")
            if done is not None and not qat_then_export:
                raise ValueError(
                    f"{where} comes after stage #{done[0]} ({done[1]}), which must be the last "
                    "one that changes the model (only a Hugging Face student's 'qat' stage may "
                    "be followed by an int8 export: its trained weights go to ONNX Runtime)")
            if stage.kind == "export":
                done = (i, "export: the student is an ONNX file from then on")
            elif stage.kind == "quantize":
                done = (i, f"quantize '{stage.method}'")
                if stage.method == "static" and hf:
                    raise ValueError(f"{where}: static int8 in PyTorch traces plain modules; "
                                     "a Hugging Face student exports with kind = 'export', "
                                     "int8 = 'static'")
            elif stage.kind == "prune" and hf and (stage.method == "2:4"
                                                   or stage.importance == "activation"):
                raise ValueError(f"{where}: a Hugging Face student is pruned by method = "
                                 "'structured' or 'magnitude', importance 'magnitude' or "
                                 "'taylor'")

    def _pruned_consistent(self) -> None:
        spec = self.student
        if not isinstance(spec, PrunedStudent):
            return
        if self.teacher is None or isinstance(self.teacher, TeacherEnsemble):
            raise ValueError("[student] arch = 'pruned' prunes the teacher: give one [teacher] "
                             "model (not an ensemble, nor [self_distill])")
        if (self.loss.hidden is not None or self.loss.attention is not None
                or self.loss.kind != "kd"):
            raise ValueError("[student] arch = 'pruned' recovers with the output loss alone "
                             "([loss] kind = 'kd', no [loss.hidden] / [loss.attention])")
        if spec.steps > self.train.epochs:
            raise ValueError(f"[student] steps = {spec.steps} needs at least as many [train] "
                             f"epochs (got {self.train.epochs}): every step trains")
        if isinstance(self.teacher, HFTeacher) and (
                spec.method == "2:4" or spec.importance == "activation"):
            raise ValueError("a Hugging Face teacher is pruned by method = 'structured' (MLP "
                             "neurons) or 'magnitude', with importance 'magnitude' or 'taylor'")

    def _hf_consistent(self) -> None:
        hf_teacher = isinstance(self.teacher, HFTeacher)
        text = reads_text(self.data)
        if text != hf_teacher:
            raise ValueError(
                f"[data] {_data_name(self.data)} is text: it needs a Hugging Face teacher "
                "([teacher] arch = 'hf'), whose tokenizer reads the text" if text else
                f"[teacher] arch = 'hf' reads text, but [data] {_data_name(self.data)} is not "
                "(a text dataset, or a table's text_column)")
        if isinstance(self.student, PrunedStudent):
            return
        if isinstance(self.student, HF_STUDENTS) and not hf_teacher:
            raise ValueError(
                f"[student] arch = '{self.student.arch}' is built from or beside a Hugging Face "
                "teacher; use [teacher] arch = 'hf'"
            )
        if hf_teacher and not isinstance(self.student, HF_STUDENTS):
            raise ValueError(
                "a Hugging Face teacher needs a Hugging Face student: [student] arch = "
                "'hf-layers' (the teacher's blocks), 'hf-scratch' or 'hf'"
            )
        embedding = hf_teacher and self.teacher.task == "sentence-embedding"
        if embedding != (self.loss.kind == "embedding"):
            raise ValueError(
                "[teacher] task = 'sentence-embedding' is distilled with [loss] kind = "
                "'embedding'" if embedding else "[loss] kind = 'embedding' needs [teacher] "
                "task = 'sentence-embedding'"
            )
        if embedding:
            given = [name for name, on in (("[baseline] enabled", self.baseline.enabled),
                                           ("[teacher.finetune]", self.teacher.finetune),
                                           ("[data] labeled", self.data.labeled is not None),
                                           ("[loss.attention]", self.loss.attention))
                     if on]
            if given:
                raise ValueError(f"sentence-embedding distillation learns from the text alone; "
                                 f"remove {', '.join(given)}")
        layer_terms = [n for n in ("hidden", "attention") if getattr(self.loss, n) is not None]
        if layer_terms and not hf_teacher:
            raise ValueError(f"[loss.{layer_terms[0]}] compares Hugging Face transformer blocks; "
                             "it needs [teacher] arch = 'hf'")
        if self.loss.attention is not None and hf_teacher:
            if self.teacher.attention == "sdpa":
                raise ValueError("[loss.attention] reads attention maps, which the 'sdpa' kernel "
                                 "does not return: set [teacher] attention = 'eager' or drop it")
            self.teacher.attention = "eager"  # the maps must exist: pick the kernel that has them
        if layer_terms and self.teacher.outputs != "online":
            raise ValueError(
                f"[loss.{layer_terms[0]}] reads the teacher's inner layers on every batch: it "
                f"needs [teacher] outputs = 'online' (not '{self.teacher.outputs}')"
            )
