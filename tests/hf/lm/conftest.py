"""Text for the tiny language models: the review words, long enough to cut into blocks."""

from __future__ import annotations

import pytest
import transformers


@pytest.fixture(scope="session")
def lm_tokenizer(tokenizer):
    """The test tokenizer with an end-of-sequence token, as causal LMs have."""
    tok = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer.backend_tokenizer, pad_token="[PAD]", unk_token="[UNK]",
        eos_token="[SEP]", bos_token="[CLS]",
    )
    return tok


@pytest.fixture(scope="session")
def documents(tokenizer):
    import random

    words = [w for w in tokenizer.get_vocab() if not w.startswith("[")]
    rng = random.Random(0)
    return [" ".join(rng.choice(words) for _ in range(rng.randint(8, 30))) for _ in range(40)]


TEXT = ["the quick brown fox jumps over the lazy dog", "to be or not to be, that is the question",
        "all the world's a stage, and all the men and women merely players"] * 4


@pytest.fixture(scope="session")
def bpe_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.train_from_iterator(TEXT, trainers.BpeTrainer(
        vocab_size=320, special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<|endoftext|>", eos_token="<|endoftext|>")


@pytest.fixture(scope="session")
def bpe_text():
    """The sentences the byte-level BPE tokenizer was trained on."""
    return list(TEXT)
