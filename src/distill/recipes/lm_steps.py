"""The causal-language-model preset's steps: ``task = "causal-lm"`` recipes.

The teacher is a Hugging Face causal LM, the data a ``text-corpus`` read by its tokenizer; the
student (the teacher's own blocks, the teacher cut to a size by measured importance, a
narrower config, or another model) learns the teacher's
next-token distributions with :class:`~distill.losses.TokenKDLoss` (forward/reverse KL or JSD,
blended with cross-entropy on the text by ``alpha``, chunked over positions), from live or
cached (dense or top-k) outputs. The baseline learns the text alone; the evaluation reports
held-out perplexity, KL to the teacher, top-1 agreement and sample continuations.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import torch
from torch import nn

from distill.api import distill, train_model
from distill.lm.compare import compare_lm
from distill.lm.evaluate import lm_metrics
from distill.losses import DistillationLoss
from distill.losses.registry import build_loss
from distill.paths import cache_dir
from distill.recipes.building import build_model, train_kwargs
from distill.recipes.schema import HFPrunedStudent, HFStudent, Recipe
from distill.recipes.steps import RunState, baseline_spec, reuse_distilled, teacher_step
from distill.recipes.teacher_setup import cached_outputs

log = logging.getLogger("distill")


def token_loss(recipe: Recipe) -> DistillationLoss:
    """``[loss]`` for next tokens: ``kind = "kd"`` means its per-token form, ``token-kd``."""
    spec = recipe.loss
    if spec.kind == "kd":
        spec = spec.model_copy(update={"kind": "token-kd"})
    return build_loss(spec)


def check_tokenizers(recipe: Recipe, teacher: nn.Module, student: nn.Module,
                     tokenizer: Any) -> None:
    """Refuse, before any training, a student whose token ids mean other strings."""
    from distill.lm.tokenizers import check_same_tokenizer, model_differences

    differences = model_differences(teacher, student)
    if differences:
        raise ValueError("teacher and student must share one tokenizer for token-level "
                         f"distillation; {'; '.join(differences)}")
    if isinstance(recipe.student, HFStudent):  # another model: compare the tokenizers too
        from distill.hf import load_tokenizer

        check_same_tokenizer(tokenizer, load_tokenizer(
            recipe.student.model, trust_remote_code=recipe.student.trust_code))


def cut_problem(recipe: Recipe) -> str | None:
    """Why ``[student] arch = "hf-pruned"`` cannot cut this teacher to its size (the nearest
    size it can reach), from the teacher's config alone: the model is built on the meta
    device, so nothing is loaded or allocated and no code from the folder runs."""
    spec = recipe.student
    if not isinstance(spec, HFPrunedStudent):
        return None
    from transformers import AutoConfig, AutoModelForCausalLM

    from distill.lm.prune import check_cut

    teacher = recipe.teacher
    trust = getattr(teacher, "trust_code", False)
    try:
        config = AutoConfig.from_pretrained(str(teacher.model), trust_remote_code=trust)
    except OSError:
        return None  # no config to read: loading the teacher names the problem
    try:
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust)
        check_cut(model, spec.size, spec.way, blocks=spec.blocks, head_groups=spec.head_groups)
    except ValueError as err:
        return f"[student] size = {spec.size:g}, way = '{spec.way}': {err}"
    return None


def lm_teacher_step(state: RunState) -> None:
    """A cut that cannot reach its size is refused before the teacher is loaded or tuned."""
    problem = cut_problem(state.recipe)
    if problem:
        raise ValueError(problem)
    teacher_step(state)


def fresh_student(state: RunState) -> nn.Module:
    """The student before training: built from the recipe, or the teacher cut to size on the
    training text (cut once per run: the baseline starts from the same cut; the cut is
    deterministic, so a resumed run makes it again and its checkpoint fits)."""
    recipe, teacher = state.recipe, state.setup.module
    spec = recipe.student
    if not isinstance(spec, HFPrunedStudent):
        return build_model(spec, state.train.info, recipe.train.seed, teacher)
    if "student_before_recovery" not in state.metrics:
        from distill.lm.prune import (
            parameter_count,
            prune_depth,
            prune_depth_width,
            prune_width,
        )

        log.info("student: cutting the teacher to %g by %s%s", spec.size, spec.way,
                 f" ({spec.criterion})" if spec.way != "width" else "")
        options = dict(batches=spec.calibration_batches, batch_size=recipe.train.batch_size)
        # the blocks' scores are kept: every run (and resume) cut from this teacher on this
        # text makes the same cut without measuring every block again
        scores = cache_dir() / "block-scores"
        if spec.way == "depth":
            cut = prune_depth(teacher, spec.size, state.train, criterion=spec.criterion,
                              cache=scores, **options)
        elif spec.way == "width":
            cut = prune_width(teacher, spec.size, state.train, head_groups=spec.head_groups,
                              **options)
        else:
            cut = prune_depth_width(teacher, spec.size, state.train, blocks=spec.blocks,
                                    criterion=spec.criterion, head_groups=spec.head_groups,
                                    cache=scores, **options)
        if spec.init == "random":  # the same architecture, none of the teacher's weights
            torch.manual_seed(recipe.train.seed)
            cut = type(cut)(cut.config).eval()
        found = lm_metrics(cut, state.test)
        state.metrics["student_before_recovery"] = {
            "perplexity": found["perplexity"], "params": parameter_count(cut),
            "blocks": cut.config.num_hidden_layers,
            "intermediate_size": cut.config.intermediate_size, "init": spec.init}
        state.pruned_start = cut
    return copy.deepcopy(state.pruned_start)


def lm_student_step(state: RunState) -> None:
    """The student learns the teacher's next-token distributions on the corpus."""
    if reuse_distilled(state):
        return
    recipe, teacher = state.recipe, state.setup.module
    student = fresh_student(state)
    check_tokenizers(recipe, teacher, student, state.tokenizer)
    loss = token_loss(recipe)
    log.info("student: distilling next tokens (%d epochs, %s, T=%g, alpha=%g)",
             recipe.train.epochs, recipe.loss.divergence, recipe.loss.temperature,
             recipe.loss.alpha)
    signal: Any = teacher
    if recipe.teacher.outputs == "cached":
        signal = cached_outputs(recipe, teacher, state.student_train, state.progress)
    state.distilled = distill(
        signal, student, state.student_train, eval=state.test, loss=loss, task="causal-lm",
        checkpoint_dir=state.checkpoints, progress=state.progress,
        precompute_teacher=recipe.teacher.outputs == "precomputed",
        resume=state.resume, **train_kwargs(recipe.train))
    state.student, state.histories["student"] = student, state.distilled.history


def lm_baseline_step(state: RunState) -> None:
    """The same student trained on the text alone (cross-entropy on the next tokens)."""
    spec = baseline_spec(state.recipe)
    baseline = fresh_student(state)
    log.info("baseline: the same student on the text alone (%d epochs)", spec.epochs)
    fitted = train_model(baseline, state.student_train, eval=state.test, task="causal-lm",
                         progress=state.progress, description="baseline",
                         checkpoint_dir=state.baseline_checkpoints, resume=state.resume,
                         **train_kwargs(spec))
    state.baseline, state.histories["baseline"] = baseline, fitted.history


def lm_evaluate_step(state: RunState) -> None:
    """Teacher, student and baseline side by side on the held-out text."""
    ev = state.recipe.evaluate
    log.info("evaluating side by side (latency with %d thread(s))", ev.threads)
    measured = compare_lm(state.setup.module, state.final_student, state.test,
                          tokenizer=state.tokenizer, baseline=state.baseline,
                          batch_sizes=ev.batch_sizes, threads=ev.threads,
                          latency_repeats=ev.latency_repeats)
    general = _general_teacher(state)
    if general is not None:
        measured["teacher_before_finetune"] = general
    state.metrics = {**measured, **state.metrics}
    state.headline = {"perplexity": measured["student"]["perplexity"]}


def _general_teacher(state: RunState) -> dict[str, float] | None:
    """A domain-tuned teacher's starting point on the same held-out text: what the
    fine-tuning bought, and the bar a small domain model can pass."""
    spec = state.recipe.teacher
    if getattr(spec, "finetune", None) is None:
        return None
    from distill.hf import load_model

    general = load_model(spec.model, "causal-lm", trust_remote_code=spec.trust_code).eval()
    found = lm_metrics(general, state.test)
    return {"perplexity": found["perplexity"], "nll": found["nll"]}


GGUF_CHECK_BLOCKS = 8  # held-out blocks the exported file is read back and scored on


def lm_export_step(state: RunState) -> None:
    """``[export] gguf``: the final student as one GGUF file per type, each read back by
    transformers and compared with the student on a held-out block."""
    from distill.lm.gguf_export import check_gguf, export_gguf

    spec, student = state.recipe.export, state.final_student
    ids = state.test.encodings["input_ids"][:GGUF_CHECK_BLOCKS]
    records = {}
    for kind in spec.gguf:
        path = export_gguf(student, state.tokenizer, state.out / f"student-{kind}.gguf",
                           dtype=kind, name=state.recipe.name,
                           pre_tokenizer=spec.pre_tokenizer)
        found = check_gguf(path, student, ids)
        records[kind] = {"file": path.name, "bytes": path.stat().st_size,
                         "top1_agreement": found.top1_agreement,
                         "perplexity": found.perplexity,
                         "student_perplexity": found.model_perplexity,
                         "checked_tokens": int(ids.numel()),
                         "max_abs_logit_diff": found.max_abs_diff, "logit_std": found.logit_std}
        log.info("exported %s (%.1f MiB): perplexity %.2f against the student's %.2f, top-1 "
                 "agreement %.2f%%", path.name, path.stat().st_size / 2**20, found.perplexity,
                 found.model_perplexity, 100 * found.top1_agreement)
    state.metrics["gguf"] = records
