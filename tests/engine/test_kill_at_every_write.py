"""A run killed at each file operation of an epoch in turn resumes to the very same weights.

A child process trains with a Python audit hook that counts every file operation touching the
checkpoint folder (opens, renames, removals, chmods, temporary files) during epoch 2 and the
checkpoint written at its end: one run lists them, then, for each one in turn, a run dies by
SIGKILL just before it (forked from a process that has imported torch once, to keep it fast).
Each time, resuming in this process must lose at most that epoch, clean what the kill left, and
end at the uninterrupted run's weights exactly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import safetensors.torch
import torch
from torch.utils.data import TensorDataset

import distill
from distill.engine import resume

CHILD = textwrap.dedent("""
    import json, os, signal, sys
    from pathlib import Path

    import safetensors.torch, torch
    from torch.utils.data import TensorDataset
    import distill
    from distill.engine.callbacks import Callback

    base, points, settings = Path(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
    WATCHED = {"open", "os.rename", "os.remove", "os.rmdir", "os.mkdir", "os.chmod",
               "os.truncate", "os.symlink", "os.link", "shutil.rmtree", "shutil.move",
               "tempfile.mkstemp", "tempfile.mkdtemp"}
    state = {"counting": False, "events": [], "kill_at": -1, "folder": ""}

    def hook(event, args):
        if not state["counting"] or event not in WATCHED or not args:
            return
        if not any(str(a).startswith(state["folder"]) for a in args
                   if isinstance(a, (str, Path))):
            return
        if len(state["events"]) == state["kill_at"]:
            os.kill(os.getpid(), signal.SIGKILL)  # as a power cut would: no cleanup runs
        state["events"].append([event, str(args[0])])

    class Window(Callback):  # epoch 2, and the checkpoint written at its end
        def on_epoch_start(self, fit_state):
            state["counting"] = fit_state.epoch == 1

    def train(kill_at):
        folder = base / f"cut-{kill_at}"
        state.update(kill_at=kill_at, folder=str(folder))
        sys.addaudithook(hook)
        data = safetensors.torch.load_file(str(base / "data.safetensors"))
        torch.manual_seed(1)
        student = distill.build_mlp((1, 8, 8), 10, hidden=(32,), dropout=0.2)
        result = distill.distill(distill.load(base / "teacher"), student,
                                 TensorDataset(data["x"], data["y"]), checkpoint_dir=folder,
                                 callbacks=[Window()], **settings)
        state["counting"] = False
        safetensors.torch.save_file(dict(result.student.state_dict()),
                                    str(base / "whole.safetensors"))
        (base / "events.json").write_text(json.dumps(state["events"]))

    torch.set_num_threads(1)  # no thread pool to fork; torch's lazy imports done once, here
    warm = TensorDataset(torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,)))
    distill.distill(distill.build_mlp((1, 8, 8), 10), distill.build_mlp((1, 8, 8), 10), warm,
                    **{**settings, "epochs": 1})
    statuses = {}
    for kill_at in points:
        pid = os.fork()
        if pid == 0:
            try:
                train(kill_at)
            finally:
                os._exit(0)
        statuses[kill_at] = os.waitpid(pid, 0)[1]
    print(json.dumps(statuses))
""")

SETTINGS = dict(epochs=3, batch_size=64, lr=1e-2, augment="flip-shift", progress=False,
                num_threads=1)


def _children(base, points: list[int]) -> dict[str, int]:
    done = subprocess.run([sys.executable, "-c", CHILD, str(base), json.dumps(points),
                           json.dumps(SETTINGS)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_killed_at_every_file_operation_of_an_epoch_resumes_to_identical_weights(tmp_path):
    torch.manual_seed(0)
    data = {"x": torch.randn(320, 1, 8, 8), "y": torch.randint(0, 10, (320,))}
    safetensors.torch.save_file(data, str(tmp_path / "data.safetensors"))
    distill.save(distill.build_mlp((1, 8, 8), 10, hidden=(48,)), tmp_path / "teacher")
    assert _children(tmp_path, [-1]) == {"-1": 0}
    events = json.loads((tmp_path / "events.json").read_text())
    expected = safetensors.torch.load_file(str(tmp_path / "whole.safetensors"))
    # the checkpoint goes through a temporary file that is flushed, published, renamed
    assert {"tempfile.mkstemp", "os.chmod", "os.rename"} <= {name for name, _ in events}
    points = list(range(len(events)))
    statuses = _children(tmp_path, points)
    teacher, train = distill.load(tmp_path / "teacher"), TensorDataset(data["x"], data["y"])
    for i, (event, path) in enumerate(events):
        assert os.WIFSIGNALED(statuses[str(i)]), (i, event, statuses[str(i)])
        folder = tmp_path / f"cut-{i}"
        found = resume.read(folder)
        assert found is not None and found[1]["epoch"] in (1, 2), (i, event)  # at most 1 lost
        torch.manual_seed(1)
        student = distill.build_mlp((1, 8, 8), 10, hidden=(32,), dropout=0.2)
        resumed = distill.distill(teacher, student, train, checkpoint_dir=folder, resume=True,
                                  **SETTINGS)
        for name, value in resumed.student.state_dict().items():
            assert torch.equal(value, expected[name]), (i, event, path, name)
        leftovers = sorted(p.name for p in folder.iterdir() if p.name != resume.CHECKPOINT)
        assert leftovers == [], (i, event, leftovers)  # what the kill left is cleaned
