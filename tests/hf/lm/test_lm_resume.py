"""A mini-tier recipe (a student cut from the teacher, recovered by distillation) killed with
SIGKILL part-way through the student's training resumes with --resume to the numbers an
uninterrupted run gives: the cut is made again, identically, and the checkpoint fits it."""

from __future__ import annotations

import os

RECIPE = """
name = "mini"
task = "causal-lm"
[data]
format = "text-corpus"
path = "corpus.txt"
test_fraction = 0.2
block_length = 8
[teacher]
arch = "hf"
model = "teacher"
[student]
arch = "hf-pruned"
size = 0.6
criterion = "skip"
calibration_batches = 2
[loss]
divergence = "forward"
alpha = 0.9
[train]
epochs = 8
batch_size = 4
threads = 1
[baseline]
enabled = false
[evaluate]
latency_repeats = 2
batch_sizes = [1]
"""


def test_a_killed_mini_tier_run_resumes_to_the_same_student(tmp_path, make_llama, lm_tokenizer,
                                                              documents, killed_run):
    make_llama(layers=4, hidden=16).save_pretrained(tmp_path / "teacher")
    lm_tokenizer.save_pretrained(tmp_path / "teacher")
    (tmp_path / "corpus.txt").write_text("\n\n".join(documents))
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE)
    env = {**os.environ, "DISTILL_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    whole, resumed = killed_run.whole_and_resumed(recipe, env, tmp_path, epochs=8)
    assert resumed["student_before_recovery"] == whole["student_before_recovery"]
    assert (killed_run.learning(resumed["history"]["student"])
            == killed_run.learning(whole["history"]["student"]))
    assert resumed["student"]["perplexity"] == whole["student"]["perplexity"]


def test_a_run_killed_inside_its_epoch_resumes_from_its_last_checkpoint_there(
        tmp_path, make_llama, lm_tokenizer, documents, killed_run):
    """A long epoch (the mini tier's is one epoch of hours) checkpointed every 2 batches: killed
    inside the second epoch, the run goes on from the batch it had reached, to the same
    numbers; the baseline, checkpointed the same way, is trained by the resumed run."""
    make_llama(layers=4, hidden=16).save_pretrained(tmp_path / "teacher")
    lm_tokenizer.save_pretrained(tmp_path / "teacher")
    (tmp_path / "corpus.txt").write_text("\n\n".join(documents))
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE.replace("epochs = 8", "epochs = 2\ncheckpoint_steps = 2")
                      .replace("enabled = false", "enabled = true"))
    env = {**os.environ, "DISTILL_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}

    def inside_the_second_epoch(meta: dict) -> bool:
        return meta["epoch"] == 1 and "within_epoch" in meta.get("training", {})

    whole, resumed = killed_run.whole_and_resumed(recipe, env, tmp_path, epochs=2,
                                                  ready=inside_the_second_epoch)
    for role in ("student", "baseline"):
        assert (killed_run.learning(resumed["history"][role])
                == killed_run.learning(whole["history"][role]))
        assert resumed[role]["perplexity"] == whole[role]["perplexity"]


def test_a_depth_and_width_cut_on_sampled_targets_resumes_inside_its_epoch(
        tmp_path, make_llama, lm_tokenizer, documents, killed_run):
    """The shipped recipe's set-up: blocks dropped then every MLP narrowed, recovered from the
    teacher's cached sampled targets, killed inside its only epoch: the cut is made again with
    the same shapes, the checkpoint fits it, and the run ends where an uninterrupted one does."""
    make_llama(layers=4, hidden=16).save_pretrained(tmp_path / "teacher")
    lm_tokenizer.save_pretrained(tmp_path / "teacher")
    (tmp_path / "corpus.txt").write_text("\n\n".join(documents))
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(
        RECIPE.replace('model = "teacher"', 'model = "teacher"\noutputs = "cached"\nsamples = 4')
        .replace('criterion = "skip"', 'criterion = "skip"\nway = "depth+width"\nblocks = 3')
        .replace("epochs = 8", "epochs = 1\ncheckpoint_steps = 2"))
    env = {**os.environ, "DISTILL_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}

    def inside_the_epoch(meta: dict) -> bool:
        return meta["epoch"] == 0 and meta.get("training", {}).get("within_epoch", {}).get(
            "step", 0) >= 2

    whole, resumed = killed_run.whole_and_resumed(recipe, env, tmp_path, epochs=1,
                                                  ready=inside_the_epoch)
    assert resumed["student_before_recovery"] == whole["student_before_recovery"]
    assert (killed_run.learning(resumed["history"]["student"])
            == killed_run.learning(whole["history"]["student"]))
    assert resumed["student"]["perplexity"] == whole["student"]["perplexity"]
