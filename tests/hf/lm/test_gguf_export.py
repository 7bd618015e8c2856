"""GGUF export of a tiny llama: transformers' own GGUF loader gives its logits back (f32
exactly, f16 and q8_0 within their rounding), the tokenizer survives, and what cannot be
written is refused by name."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")
pytest.importorskip("gguf")

from distill.lm.gguf_export import check_gguf, export_gguf  # noqa: E402


def _llama(vocab: int, tied: bool):
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=vocab, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, intermediate_size=128, max_position_embeddings=64,
        tie_word_embeddings=tied)
    return transformers.LlamaForCausalLM(config).eval()


@pytest.mark.parametrize(("dtype", "tolerance", "agreement"),
                         [("f32", 1e-4, 1.0), ("f16", 5e-3, 0.95), ("q8_0", 0.1, 0.9)])
@pytest.mark.parametrize("tied", [True, False])
def test_logits_come_back_through_transformers(tmp_path, bpe_tokenizer, bpe_text, dtype,
                                               tolerance, agreement, tied):
    model = _llama(len(bpe_tokenizer), tied)
    path = export_gguf(model, bpe_tokenizer, tmp_path / f"student-{dtype}.gguf", dtype=dtype)
    ids = torch.stack([torch.tensor(bpe_tokenizer(t)["input_ids"][:10]) for t in bpe_text[:3]])
    check = check_gguf(path, model, ids)
    assert check.relative <= tolerance, check
    assert check.top1_agreement >= agreement, check
    with torch.no_grad():  # the perplexities are those of the ids' own next tokens
        own = model(input_ids=ids, labels=ids).loss.exp()
    assert check.model_perplexity == pytest.approx(float(own), rel=1e-4)
    assert abs(check.perplexity_change) <= tolerance, check


def test_sizes_shrink_with_the_type(tmp_path, bpe_tokenizer):
    model = _llama(len(bpe_tokenizer), tied=True)
    sizes = {d: export_gguf(model, bpe_tokenizer, tmp_path / f"{d}.gguf", dtype=d).stat().st_size
             for d in ("f32", "f16", "q8_0")}
    assert sizes["q8_0"] < sizes["f16"] < sizes["f32"]


def test_the_tokenizer_is_read_back_from_the_file(tmp_path, bpe_tokenizer):
    path = export_gguf(_llama(len(bpe_tokenizer), True), bpe_tokenizer, tmp_path / "s.gguf")
    loaded = transformers.AutoTokenizer.from_pretrained(tmp_path, gguf_file=path.name)
    for text in ("the lazy fox", "to be a player"):
        assert loaded(text)["input_ids"][-3:] == bpe_tokenizer(text)["input_ids"][-3:]
    assert loaded.eos_token == "<|endoftext|>"


def test_what_cannot_be_written_is_refused_by_name(tmp_path, bpe_tokenizer, tokenizer):
    with pytest.raises(ValueError, match="supports the llama family.*'bert'"):
        export_gguf(transformers.BertModel(transformers.BertConfig(
            hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)),
            bpe_tokenizer, tmp_path / "x.gguf")
    with pytest.raises(ValueError, match="byte-level BPE.*WordLevel"):
        export_gguf(_llama(len(tokenizer), True), tokenizer, tmp_path / "y.gguf")
    with pytest.raises(ValueError, match="dtype must be"):
        export_gguf(_llama(len(bpe_tokenizer), True), bpe_tokenizer, tmp_path / "z.gguf",
                    dtype="q4")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_the_cli_writes_and_checks_a_saved_student(tmp_path, bpe_tokenizer, capsys):
    from distill.cli import main

    _llama(len(bpe_tokenizer), True).save_pretrained(tmp_path / "student")
    bpe_tokenizer.save_pretrained(tmp_path / "student")
    assert main(["gguf", str(tmp_path / "student"), str(tmp_path / "s.gguf"),
                 "--type", "q8_0"]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "q8_0" in out and "top-1 agreement" in out
    assert main(["gguf", str(tmp_path / "student"), str(tmp_path / "s.bin")]) == 1
    assert "name the output file .gguf" in capsys.readouterr().err
