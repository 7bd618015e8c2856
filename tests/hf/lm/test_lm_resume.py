"""A mini-tier recipe (a student cut from the teacher, recovered by distillation) killed with
SIGKILL part-way through the student's training resumes with --resume to the numbers an
uninterrupted run gives: the cut is made again, identically, and the checkpoint fits it."""

from __future__ import annotations

import json
import os
import sys

from distill.cli import main
from distill.engine import resume

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
                                                              documents, killed_run,
                                                              monkeypatch):
    make_llama(layers=4, hidden=16).save_pretrained(tmp_path / "teacher")
    lm_tokenizer.save_pretrained(tmp_path / "teacher")
    (tmp_path / "corpus.txt").write_text("\n\n".join(documents))
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE)
    env = {**os.environ, "DISTILL_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    args = ["run", str(recipe), "--no-progress", "--quiet"]
    command = [sys.executable, "-m", "distill.cli", *args]
    # the uninterrupted run on the other core, with its own cache
    with killed_run.alongside(command, {**env, "DISTILL_CACHE": str(tmp_path / "cache-whole")},
                              tmp_path / "whole"):
        killed_run.kill(command, env, tmp_path / "cut")
        killed_at = resume.read(tmp_path / "cut" / "checkpoints" / "student")[1]["epoch"]
        assert killed_at < 8  # epochs left for the resumed run to train
        # resumed by the CLI in this process (torch and transformers imported already): from
        # what the killed process left on disk, as a new process would
        monkeypatch.setenv("DISTILL_CACHE", env["DISTILL_CACHE"])
        assert main([*args, "--out", str(tmp_path / "cut"), "--resume"]) == 0
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    resumed = json.loads((tmp_path / "cut" / "metrics.json").read_text())
    assert resumed["student_before_recovery"] == whole["student_before_recovery"]
    assert (killed_run.learning(resumed["history"]["student"])
            == killed_run.learning(whole["history"]["student"]))
    assert resumed["student"]["perplexity"] == whole["student"]["perplexity"]
