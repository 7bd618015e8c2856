"""Finding Fashion-MNIST: a given root, Debian's package, the cache, or a verified download.

No test trains on it; the tests with the real files only read them (a second or two).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import torch

from distill.data import DatasetNotFoundError, load_dataset, load_fashion_mnist
from distill.data import fashion_mnist as fm

REAL_DIR = Path("/usr/share/datasets/fashion-mnist")
HAVE_REAL = all((REAL_DIR / name).is_file() for name in fm.FILES)
needs_real = pytest.mark.skipif(not HAVE_REAL, reason=f"Fashion-MNIST not installed in {REAL_DIR}")


@pytest.fixture
def no_debian(tmp_path, monkeypatch):
    """Pretend the Debian package is not installed."""
    empty = tmp_path / "debian-empty"
    empty.mkdir()
    monkeypatch.setattr(fm, "DEBIAN_DIR", empty)
    return empty


def _fake_files(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in fm.FILES:
        (folder / name).write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x01\x07"))


def test_dataset_not_found_is_a_file_not_found_error():
    assert issubclass(DatasetNotFoundError, FileNotFoundError)


def test_bad_split_is_refused_before_looking_for_files(tmp_path):
    with pytest.raises(ValueError, match="split"):
        load_fashion_mnist("validation", root=tmp_path)


def test_root_missing_files_names_them(tmp_path):
    root = tmp_path / "fm"
    root.mkdir()
    (root / "train-images-idx3-ubyte.gz").write_bytes(b"")
    with pytest.raises(DatasetNotFoundError) as info:
        load_fashion_mnist("train", root=root, download=False)
    message = str(info.value)
    assert str(root) in message
    for name in (
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ):
        assert name in message
    assert "train-images-idx3-ubyte.gz" not in message


def test_root_is_used_even_when_download_is_allowed(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("must not download when root is given")

    monkeypatch.setattr(fm.urllib.request, "urlopen", no_network)
    with pytest.raises(DatasetNotFoundError, match="lacks"):
        load_fashion_mnist("test", root=tmp_path, download=True)


def test_nothing_anywhere_and_no_download_suggests_apt_get(no_debian, cache_dir, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("download=False must not touch the network")

    monkeypatch.setattr(fm.urllib.request, "urlopen", no_network)
    with pytest.raises(DatasetNotFoundError) as info:
        load_fashion_mnist("train", download=False)
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert str(no_debian) in message
    assert str(cache_dir / "fashion-mnist") in message
    assert "downloads are disabled" in message


def test_cached_copy_is_found(no_debian, cache_dir):
    cached = cache_dir / "fashion-mnist"
    _fake_files(cached)
    assert fm.find_fashion_mnist(download=False) == cached


def test_download_with_bad_checksum_fails_and_leaves_no_files(
    tmp_path, no_debian, cache_dir, monkeypatch
):
    server = tmp_path / "server"
    _fake_files(server)
    monkeypatch.setattr(fm, "URL", server.as_uri() + "/")
    with pytest.raises(DatasetNotFoundError) as info:
        load_fashion_mnist("train", download=True)
    message = str(info.value)
    assert "checksum" in message and "download failed" in message
    assert "apt-get" in message
    cached = cache_dir / "fashion-mnist"
    assert not cached.exists() or list(cached.iterdir()) == []  # no partial or temp files


def test_download_from_unreachable_url_is_a_dataset_not_found_error(
    tmp_path, no_debian, monkeypatch
):
    monkeypatch.setattr(fm, "URL", (tmp_path / "nowhere").as_uri() + "/")
    with pytest.raises(DatasetNotFoundError, match="download failed"):
        load_fashion_mnist("test", download=True)


@needs_real
def test_real_files_load_with_expected_shapes():
    train = load_fashion_mnist("train", root=REAL_DIR, download=False)
    test = load_fashion_mnist("test", root=REAL_DIR, download=False)
    assert train.inputs.shape == (60000, 1, 28, 28) and test.inputs.shape == (10000, 1, 28, 28)
    for ds in (train, test):
        assert ds.inputs.dtype == torch.float32 and ds.labels.dtype == torch.int64
        assert sorted(ds.labels.unique().tolist()) == list(range(10))
        assert ds.info.num_classes == 10 and len(ds.info.class_names) == 10
    # normalised with the published mean/std: about zero mean, unit spread on the training set
    assert abs(float(train.inputs.mean())) < 0.01
    assert abs(float(train.inputs.std()) - 1.0) < 0.01
    assert torch.equal(torch.bincount(test.labels), torch.full((10,), 1000))


@needs_real
def test_debian_folder_is_found_without_root(monkeypatch):
    monkeypatch.setattr(fm, "DEBIAN_DIR", REAL_DIR)
    assert fm.find_fashion_mnist(download=False) == REAL_DIR
    assert len(load_dataset("fashion-mnist", split="test", download=False)) == 10000


@needs_real
def test_download_from_file_url_fills_the_cache(no_debian, cache_dir, monkeypatch):
    monkeypatch.setattr(fm, "URL", REAL_DIR.as_uri() + "/")
    ds = load_fashion_mnist("test", download=True)
    cached = cache_dir / "fashion-mnist"
    assert sorted(p.name for p in cached.iterdir()) == sorted(fm.FILES)  # no temp files left
    for name in fm.FILES:
        assert (cached / name).read_bytes() == (REAL_DIR / name).read_bytes()
    assert ds.inputs.shape == (10000, 1, 28, 28)

    # the second call uses the cache: no network at all
    def no_network(*args, **kwargs):
        raise AssertionError("the cached copy must be used")

    monkeypatch.setattr(fm.urllib.request, "urlopen", no_network)
    assert fm.find_fashion_mnist(download=True) == cached
