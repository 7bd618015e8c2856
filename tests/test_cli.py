"""The command line: useful help, clean errors (no tracebacks), and working subcommands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import distill
from distill.cli import main

TINY = """
name = "tiny"
[data]
dataset = "digits"
[teacher]
arch = "cnn"
channels = [8]
[teacher.train]
epochs = 2
[student]
arch = "mlp"
hidden = [8]
[train]
epochs = 2
[evaluate]
latency_repeats = 5
"""


def test_help_is_useful_on_its_own(capsys):
    with pytest.raises(SystemExit) as code:
        main(["--help"])
    assert code.value.code == 0
    out = capsys.readouterr().out
    assert "run" in out and "eval" in out and "examples:" in out


@pytest.mark.parametrize("command,option", [("run", "--out"), ("eval", "--teacher"),
                                            ("cache", "--top-k")])
def test_subcommand_help(command, option, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    assert "example" in out and option in out


def test_console_entry_point_is_installed():
    exe = Path(sys.executable).parent / "distill"
    done = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == f"distill {distill.__version__}"


def test_bad_recipe_gives_a_message_not_a_traceback(tmp_path, capsys):
    recipe = tmp_path / "bad.toml"
    recipe.write_text(TINY.replace("[train]\nepochs = 2", "[train]\nepochz = 2"))
    assert main(["run", str(recipe), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "[train]: unknown field 'epochz'" in err and "did you mean 'epochs'?" in err
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_check_only_validates(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    recipe = tmp_path / "ok.toml"
    recipe.write_text(TINY)
    assert main(["run", str(recipe), "--check"]) == 0
    assert not (tmp_path / "runs").exists()  # nothing was run
    assert "valid" in capsys.readouterr().out


def test_run_then_eval(tmp_path, capsys):
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY)
    out = tmp_path / "run"
    assert main(["run", str(recipe), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "retention" in printed and "| student |" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert f"1 thread(s) on {metrics['environment']['cpu']})" in printed  # where, said

    assert main(["eval", str(out / "student"), "--data", "digits", "--json",
                 "--repeats", "5"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["student"]["accuracy"] == pytest.approx(metrics["student"]["accuracy"])
    assert result["student"]["params"] == metrics["student"]["params"]

    # one table across runs; a folder that is not a finished run is named, not a traceback
    assert main(["compare", str(out), str(out)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("| run | teacher acc") and len(table) == 6
    assert table[2].startswith("| tiny | ") and f"{metrics['student']['params']:,}" in table[2]
    assert table[-1] == f"Latency measured on {metrics['environment']['cpu']}."
    assert main(["compare", str(out), str(tmp_path)]) == 1
    assert "not a finished run" in capsys.readouterr().err

    # report.html redrawn from metrics.json alone, the recipe included
    (out / "report.html").unlink()
    assert main(["report", str(out)]) == 0
    assert "report.html" in capsys.readouterr().out
    page = (out / "report.html").read_text()
    assert '<section id="inherited">' in page and "name = &quot;tiny&quot;" in page
    assert main(["report", str(tmp_path)]) == 1
    assert "not a finished run" in capsys.readouterr().err


def test_eval_against_a_teacher_reports_ratios(tmp_path, capsys):
    torch.manual_seed(0)
    teacher = distill.build_cnn((1, 8, 8), 10, channels=(8,))
    student = distill.build_mlp((1, 8, 8), 10, hidden=(4,))
    distill.save(teacher, tmp_path / "t")
    distill.save(student, tmp_path / "s")
    code = main(["eval", str(tmp_path / "s"), "--data", "digits", "--teacher", str(tmp_path / "t"),
                 "--repeats", "5"])
    assert code == 0
    out = capsys.readouterr().out
    assert "retention:" in out and "compression:" in out


def test_eval_of_a_missing_model_is_a_clear_error(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "nothing"), "--data", "digits"]) == 1
    err = capsys.readouterr().err
    assert "not a saved model folder" in err and "Traceback" not in err


def test_cache_command_builds_reuses_and_refuses_stale(tmp_path, capsys):
    torch.manual_seed(0)
    distill.save(distill.build_mlp((1, 8, 8), 10, hidden=(8,)), tmp_path / "t")
    args = ["cache", str(tmp_path / "t"), "--data", "digits", "--out", str(tmp_path / "c"),
            "--top-k", "4", "--no-progress"]
    assert main(args) == 0
    assert "1438 rows, top-4 float16" in capsys.readouterr().out
    assert distill.CachedTeacher(tmp_path / "c").kind == "topk"
    assert main(args[:-3] + ["--no-progress"]) == 1  # dense now: a different setting
    err = capsys.readouterr().err
    assert "the setting 'top_k' changed (4 → None)" in err and "--overwrite" in err
    assert "Traceback" not in err
