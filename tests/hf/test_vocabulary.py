"""Vocabulary trimming: fewer embedding rows, the same outputs on the domain's text, and a
tokenizer that plain transformers loads back."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from distill.hf.vocabulary import tokenized_alike, trim_vocabulary

from .conftest import tiny_bert, transformers

PIECES = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "film", "plot", "good", "bad",
          "very", "not", "acting", "story", "music", "ending", "##s", "##ing", "##ed", "act",
          "sing", "end", "a", "b", "c", "##a", "##b", "##c", "great", "awful", "boring", "fun"]
DOMAIN = ["the film good", "the plot bad", "very good acting", "not good the ending",
          "the films", "bad plot"]


@pytest.fixture(scope="module")
def wordpiece():
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    vocab = {w: i for i, w in enumerate(PIECES)}
    core = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    core.normalizer = normalizers.BertNormalizer(lowercase=True)
    core.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    core.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]")


def _logits(model, tokenizer, texts):
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**batch).logits


def test_trimmed_model_gives_the_same_outputs_on_domain_text(wordpiece):
    model = tiny_bert(vocab_size=len(PIECES), layers=2)
    trimmed = trim_vocabulary(model, wordpiece, DOMAIN, keep_characters=False)
    used = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "film", "plot", "good", "bad",
            "very", "not", "acting", "ending", "##s"}
    assert len(trimmed.kept) == len(used) < len(PIECES)
    assert trimmed.model.get_input_embeddings().weight.shape[0] == len(used)
    assert trimmed.model.config.vocab_size == len(used)
    assert trimmed.parameters_before - trimmed.parameters_after == 16 * (len(PIECES) - len(used))
    assert model.get_input_embeddings().weight.shape[0] == len(PIECES)  # the original is kept
    # same vectors under new numbers: identical logits, texts tokenized by each own tokenizer
    assert torch.allclose(_logits(model, wordpiece, DOMAIN),
                          _logits(trimmed.model, trimmed.tokenizer, DOMAIN), atol=1e-6)
    ids = wordpiece(DOMAIN[0], return_tensors="pt")["input_ids"]
    assert torch.equal(trimmed.remap(ids), trimmed.tokenizer(DOMAIN[0],
                                                             return_tensors="pt")["input_ids"])


def test_unseen_words_are_spelled_from_kept_characters(wordpiece):
    model = tiny_bert(vocab_size=len(PIECES), layers=1)
    bare = trim_vocabulary(model, wordpiece, DOMAIN, keep_characters=False)
    spelled = trim_vocabulary(model, wordpiece, DOMAIN)
    assert {"a", "b", "c", "##a", "##b", "##c"} <= set(spelled.tokenizer.get_vocab())
    held_out = ["the film great", "abc good"]
    # "great" was never seen: unknown either way; "abc" is spelled a ##b ##c when kept
    assert bare.tokenizer.tokenize("abc") == ["[UNK]"]
    assert spelled.tokenizer.tokenize("abc") == ["a", "##b", "##c"]
    alike = tokenized_alike(wordpiece, spelled, held_out)
    assert alike["texts_alike"] == 0.5  # "abc good" is cut as before; "great" is now unknown
    assert 0 < alike["unknown_tokens"] < 0.5


def test_saved_trimmed_student_loads_without_distill(wordpiece, tmp_path):
    trimmed = trim_vocabulary(tiny_bert(vocab_size=len(PIECES), layers=1), wordpiece, DOMAIN)
    trimmed.model.save_pretrained(tmp_path)
    trimmed.tokenizer.save_pretrained(tmp_path)
    expected = _logits(trimmed.model, trimmed.tokenizer, DOMAIN[:2])
    script = (
        "import sys, torch, transformers\n"
        "assert 'distill' not in sys.modules\n"
        f"path = {str(tmp_path)!r}\n"
        "tok = transformers.AutoTokenizer.from_pretrained(path)\n"
        "model = transformers.AutoModelForSequenceClassification.from_pretrained(path).eval()\n"
        f"batch = tok({DOMAIN[:2]!r}, padding=True, return_tensors='pt')\n"
        "with torch.no_grad():\n"
        "    print(model(**batch).logits.flatten().tolist())\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    found = torch.tensor(eval(out.stdout.strip().splitlines()[-1]))
    assert torch.allclose(found, expected.flatten(), atol=1e-5)


def test_tokenizers_that_cannot_be_trimmed_are_named(tokenizer):
    from tokenizers import Tokenizer, models

    model = tiny_bert(vocab_size=32, layers=1)
    bpe = transformers.PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.BPE({"a": 0, "b": 1, "ab": 2}, [("a", "b")])))
    with pytest.raises(ValueError, match="supports WordPiece and WordLevel tokenizers.*BPE"):
        trim_vocabulary(model, bpe, ["ab"])
    with pytest.raises(ValueError, match="embedding table has 4 rows: not this model's"):
        trim_vocabulary(tiny_bert(vocab_size=4, layers=1), tokenizer, ["good film"])
