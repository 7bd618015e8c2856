"""Built-in offline datasets, users' own data formats, and the augmentations the engine applies."""

from distill.data.augment import FlipShift, make_augmentation
from distill.data.base import NO_LABEL, ArrayDataset, DatasetInfo
from distill.data.digits import load_digits
from distill.data.fashion_mnist import DatasetNotFoundError, load_fashion_mnist
from distill.data.rotten_tomatoes import load_rotten_tomatoes
from distill.data.transfer import TransferSet, mix_labeled_unlabeled

DATASETS = {"fashion-mnist": load_fashion_mnist, "digits": load_digits}
# text datasets give (texts, labels); a model's tokenizer turns them into tensors
TEXT_DATASETS = {"rotten-tomatoes": load_rotten_tomatoes}


def load_dataset(name: str, split: str = "train", **options) -> ArrayDataset:
    """Load a built-in dataset by name: ``fashion-mnist`` or ``digits``."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; built-in datasets: {sorted(DATASETS)}")
    return DATASETS[name](split=split, **options)


# users' own data (distill.data.formats); last, as the builtin format wraps the loaders above
from distill.data.formats import (  # noqa: E402
    DATA_FORMATS,
    DataError,
    check_data,
    guess_format,
    load_data,
)

__all__ = [
    "DATASETS",
    "DATA_FORMATS",
    "DataError",
    "TEXT_DATASETS",
    "NO_LABEL",
    "ArrayDataset",
    "DatasetInfo",
    "DatasetNotFoundError",
    "FlipShift",
    "TransferSet",
    "check_data",
    "guess_format",
    "load_data",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_rotten_tomatoes",
    "make_augmentation",
    "mix_labeled_unlabeled",
]
