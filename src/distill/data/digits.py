"""scikit-learn's 8x8 digits: 1,797 real images, small enough for tests that take seconds."""

from __future__ import annotations

import torch

from distill.data.base import ArrayDataset, DatasetInfo

TEST_FRACTION = 0.2


def load_digits(split: str = "train", seed: int = 0) -> ArrayDataset:
    """A fixed, stratified train/test split; images scaled to [0, 1], shape (N, 1, 8, 8)."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the digits dataset needs scikit-learn: pip install 'distill[datasets]'"
        ) from err
    bunch = sk_load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(bunch.target, dtype=torch.int64)
    generator = torch.Generator().manual_seed(seed)
    test_idx = []
    for c in range(10):
        idx = (y == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=generator)]
        test_idx.append(idx[: round(len(idx) * TEST_FRACTION)])
    test_mask = torch.zeros(len(y), dtype=torch.bool)
    test_mask[torch.cat(test_idx)] = True
    keep = test_mask if split == "test" else ~test_mask
    info = DatasetInfo(f"digits/{split}", (1, 8, 8), 10, tuple(str(i) for i in range(10)))
    return ArrayDataset(x[keep], y[keep], info)
