"""Shared test setup: one torch thread (the CI box is small) and a private cache folder."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def cache_dir(tmp_path_factory, monkeypatch):
    """Point DISTILL_CACHE at an empty folder so no test reads or writes ~/.cache."""
    folder = tmp_path_factory.mktemp("distill-cache")
    monkeypatch.setenv("DISTILL_CACHE", str(folder))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    return folder


@pytest.fixture
def killed_run(monkeypatch):
    """``kill(command, env, out, ready)``: start ``command --out out``, SIGKILL it once the
    student's checkpoint is ``ready`` (default: 2 finished epochs with the training state; the
    checkpoint's metadata is passed), and check nothing that
    looks finished was written. ``alongside(command, env, out)``: a block during which
    ``command --out out`` runs in the background (the uninterrupted run beside the killed and
    resumed ones: the box has two cores and each run uses one thread), checked to exit 0 when
    the block ends. ``whole_and_resumed(recipe, env, root, epochs, ready)``: the recipe's
    metrics run uninterrupted, and killed then resumed. ``learning(history)``: what epochs
    learned, not their times."""
    import contextlib
    import json
    import os
    import signal
    import subprocess
    import sys
    import time
    from types import SimpleNamespace

    from distill.engine import resume

    def two_epochs(meta: dict) -> bool:
        return meta["epoch"] >= 2 and "training" in meta

    def kill(command: list[str], env: dict[str, str], out, ready=two_epochs) -> None:
        run = subprocess.Popen([*command, "--out", str(out)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        folder = out / "checkpoints" / "student"
        deadline = time.time() + 120
        while time.time() < deadline and run.poll() is None:
            found = resume.read(folder) if (folder / resume.CHECKPOINT).is_file() else None
            if found is not None and ready(found[1]):
                break
            time.sleep(0.02)
        assert run.poll() is None, "the run ended before it could be killed"
        os.kill(run.pid, signal.SIGKILL)
        run.wait()
        assert not (out / "metrics.json").exists()  # nothing that looks finished

    @contextlib.contextmanager
    def alongside(command: list[str], env: dict[str, str], out):
        log = out.parent / f"{out.name}.log"
        with open(log, "wb") as sink:
            run = subprocess.Popen([*command, "--out", str(out)], env=env, stdout=sink,
                                   stderr=subprocess.STDOUT)
        try:
            yield run
            code = run.wait(timeout=300)
        finally:
            if run.poll() is None:  # the block failed or timed out: leave nothing running
                run.kill()
                run.wait()
        assert code == 0, log.read_text()[-3000:]

    def whole_and_resumed(recipe, env: dict[str, str], root, epochs: int, ready=two_epochs
                          ) -> tuple[dict, dict]:
        from distill.cli import main

        args = ["run", str(recipe), "--no-progress", "--quiet"]
        command = [sys.executable, "-m", "distill.cli", *args]
        # the uninterrupted run on the other core, with its own cache (it trains the same
        # teacher, seeded, rather than read one the killed run may be writing)
        with alongside(command, {**env, "DISTILL_CACHE": str(root / "cache-whole")},
                       root / "whole"):
            kill(command, env, root / "cut", ready)
            killed_at = resume.read(root / "cut" / "checkpoints" / "student")[1]["epoch"]
            assert killed_at < epochs  # epochs left for the resumed run to train
            # resumed by the CLI in this process (torch imported already): from what the
            # killed process left on disk, as a new process would
            monkeypatch.setenv("DISTILL_CACHE", env["DISTILL_CACHE"])
            assert main([*args, "--out", str(root / "cut"), "--resume"]) == 0
        return tuple(json.loads((root / name / "metrics.json").read_text())
                     for name in ("whole", "cut"))

    def learning(history: list[dict]) -> list[dict]:
        return [{k: v for k, v in h.items() if k not in ("seconds", "samples_per_s")}
                for h in history]

    return SimpleNamespace(kill=kill, alongside=alongside, whole_and_resumed=whole_and_resumed,
                           learning=learning)
