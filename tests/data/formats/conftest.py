"""Small data written by the tests themselves: PNG folders, tables, text folders, a tokenizer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

WORDS = ["good", "great", "fine", "bad", "awful", "poor", "film", "plot", "the", "a"]


def write_images(root: Path, counts: dict[str, int], size: tuple[int, int] = (6, 5),
                 mode: str = "RGB", seed: int = 0, suffix: str = ".png") -> list[Path]:
    """``counts[class]`` random images of ``size`` (height, width) under ``root/<class>/``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    paths = []
    for name, count in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            shape = size if mode == "L" else (*size, 3)
            path = root / name / f"{i:03d}{suffix}"
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)
            paths.append(path)
    return paths


def reviews(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Short texts whose label ("pos"/"neg") follows their words."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        positive = i % 2 == 0
        pool = WORDS[:3] if positive else WORDS[3:6]
        texts.append("the film " + " ".join(rng.choice(pool, 3)))
        labels.append("pos" if positive else "neg")
    return texts, labels


@pytest.fixture(scope="session")
def tokenizer():
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", *WORDS])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    return transformers.PreTrainedTokenizerFast(tokenizer_object=core, pad_token="[PAD]",
                                                unk_token="[UNK]")


@pytest.fixture(scope="session")
def make_images():
    return write_images


@pytest.fixture(scope="session")
def make_reviews():
    return reviews
