"""Fashion-MNIST (Xiao et al. 2017): Debian's files, a cached copy, or a verified download."""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path

import numpy as np
import torch

from distill.data.base import ArrayDataset, DatasetInfo
from distill.data.idx import read_idx
from distill.paths import cache_dir

URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
# SHA-256 of the *decompressed* IDX files: distributions recompress the .gz files, the data stays.
FILES = {
    "train-images-idx3-ubyte.gz": (
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"
    ),
    "train-labels-idx1-ubyte.gz": (
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"
    ),
    "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
MEAN, STD = 0.2860, 0.3530


class DatasetNotFoundError(FileNotFoundError):
    """No usable copy of a dataset could be found or fetched; the message says what to do."""


def _content_sha256(path: Path) -> str:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return hashlib.sha256(raw).hexdigest()


def _complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in FILES)


def _download(folder: Path, timeout: float = 30.0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, digest in FILES.items():
        target = folder / name
        if target.is_file() and _content_sha256(target) == digest:
            continue
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
        os.close(fd)
        tmp_path = Path(tmp)
        try:
            with urllib.request.urlopen(URL + name, timeout=timeout) as response:
                tmp_path.write_bytes(response.read())
            if _content_sha256(tmp_path) != digest:
                raise DatasetNotFoundError(f"checksum mismatch for downloaded {URL + name}")
            tmp_path.replace(target)
        finally:
            tmp_path.unlink(missing_ok=True)


def find_fashion_mnist(root: str | Path | None = None, download: bool = True) -> Path:
    """The folder holding the four files: ``root``, Debian's, the cache, or a fresh download."""
    if root is not None:
        root = Path(root).expanduser()
        if not _complete(root):
            missing = [n for n in FILES if not (root / n).is_file()]
            raise DatasetNotFoundError(f"Fashion-MNIST root {root} lacks {', '.join(missing)}")
        return root
    cached = cache_dir() / "fashion-mnist"
    for folder in (DEBIAN_DIR, cached):
        if _complete(folder):
            return folder
    if not download:
        raise DatasetNotFoundError(_missing_message(cached, "downloads are disabled"))
    try:
        _download(cached)
    except (OSError, DatasetNotFoundError) as err:
        raise DatasetNotFoundError(_missing_message(cached, f"download failed: {err}")) from err
    return cached


def _missing_message(cached: Path, why: str) -> str:
    return (
        f"Fashion-MNIST was not found in {DEBIAN_DIR} or {cached}, and {why}. "
        "Install it with `apt-get install dataset-fashion-mnist`, copy the four .gz files "
        f"({', '.join(FILES)}) into {cached}, or pass root=<folder>."
    )


def load_fashion_mnist(
    split: str = "train", root: str | Path | None = None, download: bool = True
) -> ArrayDataset:
    """Images as normalised float tensors of shape (N, 1, 28, 28) with int64 labels."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = find_fashion_mnist(root, download)
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(folder / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz")
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    x = (x - MEAN) / STD
    y = torch.from_numpy(labels.astype(np.int64))
    info = DatasetInfo(f"fashion-mnist/{split}", (1, 28, 28), 10, CLASSES)
    return ArrayDataset(x, y, info)
