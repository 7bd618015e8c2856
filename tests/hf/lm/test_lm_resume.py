"""A mini-tier recipe (a student cut from the teacher, recovered by distillation) killed with
SIGKILL part-way through the student's training resumes with --resume to the numbers an
uninterrupted run gives: the cut is made again, identically, and the checkpoint fits it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

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
epochs = 30
batch_size = 4
threads = 1
[baseline]
enabled = false
[evaluate]
latency_repeats = 2
batch_sizes = [1]
"""


def test_a_killed_mini_tier_run_resumes_to_the_same_student(tmp_path, make_llama, lm_tokenizer,
                                                              documents):
    make_llama(layers=4, hidden=16).save_pretrained(tmp_path / "teacher")
    lm_tokenizer.save_pretrained(tmp_path / "teacher")
    (tmp_path / "corpus.txt").write_text("\n\n".join(documents))
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE)
    env = {**os.environ, "DISTILL_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "distill.cli", "run", str(recipe), "--no-progress",
               "--quiet"]
    subprocess.run([*command, "--out", str(tmp_path / "whole")], env=env, check=True,
                   capture_output=True)
    run = subprocess.Popen([*command, "--out", str(tmp_path / "cut")], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder = tmp_path / "cut" / "checkpoints" / "student"
    deadline = time.time() + 120
    while time.time() < deadline and run.poll() is None:
        found = resume.read(folder) if (folder / resume.CHECKPOINT).is_file() else None
        if found is not None and found[1]["epoch"] >= 2 and "training" in found[1]:
            break
        time.sleep(0.02)
    assert run.poll() is None, "the run ended before it could be killed"
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    assert not (tmp_path / "cut" / "metrics.json").exists()
    subprocess.run([*command, "--out", str(tmp_path / "cut"), "--resume"], env=env,
                   check=True, capture_output=True)
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    resumed = json.loads((tmp_path / "cut" / "metrics.json").read_text())
    assert resumed["student_before_recovery"] == whole["student_before_recovery"]

    def learning(history):  # what the epochs learned, not how long they took
        return [{k: v for k, v in h.items() if k not in ("seconds", "samples_per_s")}
                for h in history]

    assert learning(resumed["history"]["student"]) == learning(whole["history"]["student"])
    assert resumed["student"]["perplexity"] == whole["student"]["perplexity"]
