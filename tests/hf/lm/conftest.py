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
