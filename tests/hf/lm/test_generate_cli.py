"""``distill generate``: a saved student continues a prompt, with or without its teacher."""

from __future__ import annotations

from distill.cli import main
from distill.hf import save_pretrained


def test_generate_prints_the_prompt_and_its_continuation(make_llama, lm_tokenizer, tmp_path,
                                                         capsys):
    save_pretrained(make_llama(layers=1, seed=1), tmp_path / "student", lm_tokenizer)
    save_pretrained(make_llama(layers=2, seed=2), tmp_path / "teacher", lm_tokenizer)
    args = ["generate", str(tmp_path / "student"), "the film", "--max-new-tokens", "4",
            "--threads", "1"]
    assert main(args) == 0
    out = capsys.readouterr()
    assert out.out.startswith("the film") and "tokens/s" in out.err
    assert main([*args, "--teacher", str(tmp_path / "teacher")]) == 0
    out = capsys.readouterr().out
    assert "--- model:" in out and "--- teacher:" in out


def test_generate_names_a_missing_model(tmp_path, capsys):
    assert main(["generate", str(tmp_path / "nowhere"), "hello"]) == 1
    assert "nowhere" in capsys.readouterr().err
