"""Two processes on torch.distributed (gloo, CPU, launched by torchrun) train the student to
what one process gives with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

import distill
from distill.cli import main
from distill.data.digits import load_digits
from distill.engine import resume

SCRIPT = textwrap.dedent("""
    import sys, torch, distill
    import torch.distributed as dist
    from distill.data.digits import load_digits

    class Count(distill.Callback):
        def on_fit_end(self, state):
            self.samples = state.samples

    teacher = distill.load(sys.argv[1])
    torch.manual_seed(1)
    student = distill.build_mlp((1, 8, 8), 10, hidden=(32,))
    count = Count()
    distill.distill(teacher, student, load_digits("train"), epochs=2, batch_size=64, lr=1e-2,
                    seed=3, progress=False, checkpoint_dir=sys.argv[3], callbacks=[count],
                    distributed=sys.argv[4])
    assert not any(type(p).__name__ == "DTensor" for p in student.parameters())  # plain
    assert dist.is_initialized() and dist.get_world_size() == 2
    if dist.get_rank() == 0:
        distill.save(student, sys.argv[2], metadata={"samples": count.samples})
    dist.barrier()  # both ranks done before the group goes (rank 1 once aborted in teardown,
    dist.destroy_process_group()  # "terminate called without an active exception", while 0 saved)
""")


@pytest.mark.parametrize("mode", ["ddp", "fsdp"])
def test_two_processes_match_one_with_the_same_global_batch(tmp_path, mode):
    torch.manual_seed(0)
    teacher = distill.build_mlp((1, 8, 8), 10, hidden=(64,))
    distill.train_model(teacher, load_digits("train"), epochs=2, batch_size=64, progress=False)
    distill.save(teacher, tmp_path / "teacher")
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(script), str(tmp_path / "teacher"), str(tmp_path / "ddp"), str(tmp_path / "ckpt"),
         mode],
        env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ddp = distill.load(tmp_path / "ddp")
    config = json.loads((tmp_path / "ddp" / "config.json").read_text())
    assert config["metadata"]["samples"] == len(load_digits("train"))  # half of 2 epochs each

    torch.manual_seed(1)
    single = distill.build_mlp((1, 8, 8), 10, hidden=(32,))
    distill.distill(distill.load(tmp_path / "teacher"), single, load_digits("train"), epochs=2,
                    batch_size=64, lr=1e-2, seed=3, progress=False)
    # the same updates; only the order of floating-point sums differs (all-reduce)
    for a, b in zip(ddp.parameters(), single.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    _, meta = resume.read(tmp_path / "ckpt")  # written by rank 0
    # a resumable checkpoint with DDP; FSDP's sharded optimizer states are not saved yet
    assert ("training" in meta) == (mode == "ddp")


@pytest.mark.parametrize("size,rank,expected", [
    (10, 0, [[0, 2, 4, 6], [8]]),
    (10, 1, [[1, 3, 5, 7], [9]]),
    (9, 1, [[1, 3, 5, 7], [8]]),  # a last batch smaller than the world goes whole to each
])
def test_each_process_takes_every_world_th_sample_of_each_batch(size, rank, expected):
    from distill.batches import Batches
    from distill.data import ArrayDataset, DatasetInfo

    data = ArrayDataset(torch.arange(size).float()[:, None], torch.zeros(size).long(),
                        DatasetInfo("toy", (1,), 2))
    shares = Batches(data, 8, shuffle=False, shard=(rank, 2))
    assert len(shares) == 2
    assert [b.indices.tolist() for b in shares] == expected


RECIPE = """
name = "ranks"
[data]
dataset = "digits"
[teacher]
arch = "mlp"
hidden = [64]
outputs = "cached"
[teacher.train]
epochs = 2
batch_size = 64
threads = 1
[student]
arch = "mlp"
hidden = [32]
[train]
epochs = 3
batch_size = 64
threads = 1
[baseline]
enabled = true
[evaluate]
latency_repeats = 3
batch_sizes = [1]
"""


def test_the_same_recipe_runs_on_two_processes_under_torchrun(tmp_path, monkeypatch):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DISTILL_CACHE": str(tmp_path / "cache")}
    cli = ["run", str(recipe), "--no-progress", "--quiet", "--out"]
    with open(tmp_path / "out.txt", "w") as out, open(tmp_path / "err.txt", "w") as err:
        launch = subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
             "2", "-m", "distill.cli", *cli, str(tmp_path / "two")], env=env, stdout=out,
            stderr=err)
    try:
        # meanwhile the same recipe in one process, this one (its start-up is paid already),
        # with its own cache: the teacher trained again, alone
        monkeypatch.setenv("DISTILL_CACHE", str(tmp_path / "cache-one"))
        assert main([*cli, str(tmp_path / "one")]) == 0
        code = launch.wait(timeout=300)
    finally:
        if launch.poll() is None:  # this process failed: torchrun stops its workers
            launch.terminate()
            launch.wait(timeout=60)
    assert code == 0, (tmp_path / "err.txt").read_text()[-3000:]
    assert (tmp_path / "out.txt").read_text().count("| student |") == 1  # one rank reports
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    # teacher, cached outputs, student and baseline all trained on two ranks: the same
    # numbers as one process, up to the order of floating-point sums (a test sample or two)
    for role in ("teacher", "student", "baseline"):
        assert abs(two[role]["accuracy"] - one[role]["accuracy"]) <= 2 / 360, role
    cached = list((tmp_path / "cache" / "teacher-outputs").iterdir())
    assert len(cached) == 1  # written once


CACHE_SCRIPT = textwrap.dedent("""
    import sys, torch, distill
    import torch.distributed as dist
    from distill.data.digits import load_digits

    dist.init_process_group("gloo")
    distill.cache_teacher(distill.load(sys.argv[1]), load_digits("train"), sys.argv[2],
                          shard_rows=100, top_k=3)
    dist.destroy_process_group()
""")


def test_two_processes_write_the_teacher_cache_in_shards_read_as_one(tmp_path):
    torch.manual_seed(0)
    teacher = distill.build_mlp((1, 8, 8), 10, hidden=(16,)).eval()
    distill.save(teacher, tmp_path / "teacher")
    script = tmp_path / "cache.py"
    script.write_text(CACHE_SCRIPT)
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(script), str(tmp_path / "teacher"), str(tmp_path / "shared")],
        env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
        timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((tmp_path / "shared" / "manifest.json").read_text())
    assert manifest["complete"] and len(manifest["shards"]) == 15  # 1,438 rows by 100
    assert [s["start"] for s in manifest["shards"]] == list(range(0, 1438, 100))
    train = load_digits("train")
    alone = distill.cache_teacher(distill.load(tmp_path / "teacher"), train, tmp_path / "alone",
                                  shard_rows=100, top_k=3)
    shared = distill.CachedTeacher(tmp_path / "shared")
    rows = torch.arange(len(train))
    a, b = alone.logits(train.inputs, rows), shared.logits(train.inputs, rows)
    torch.testing.assert_close(a.logits, b.logits)
    torch.testing.assert_close(a.indices, b.indices)


def test_fsdp_refuses_what_a_sharded_copy_cannot_do():
    from distill.engine import TrainConfig
    from distill.engine.distributed import sharded_copy

    model = distill.build_mlp((1, 8, 8), 10, hidden=(8,))
    model[0].register_forward_hook(lambda *args: None)  # as a layer loss does
    with pytest.raises(ValueError, match="use distributed='ddp'"):
        sharded_copy(model)
    with pytest.raises(ValueError, match="distributed must be"):
        TrainConfig(distributed="zero3")
