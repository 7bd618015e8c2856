"""convert_gguf: a missing file is named; a folder converted before is kept as it is."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")

from distill.hf.gguf import convert_gguf  # noqa: E402


def test_a_missing_gguf_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.Q4_1.gguf: no such GGUF file"):
        convert_gguf(tmp_path, "model.Q4_1.gguf", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_converted_folder_is_reused_without_reading_the_gguf(tmp_path, make_llama):
    make_llama(layers=1).save_pretrained(tmp_path / "out")
    assert convert_gguf(tmp_path / "nowhere", "x.gguf", tmp_path / "out") == tmp_path / "out"
