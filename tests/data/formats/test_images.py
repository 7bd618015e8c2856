"""image-folder: lazy decoding, labels, splits, preprocessing, and every bad input it names."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from PIL import Image

from distill.data import NO_LABEL, check_data, load_data
from distill.data.formats import DataError, MissingDataError, preprocess_image
from distill.data.formats.images import ImageFolderDataset


def test_loads_lazily_with_class_names_shapes_and_preprocessing(tmp_path, make_images):
    make_images(tmp_path / "train", {"dog": 4, "cat": 3}, size=(6, 5))
    make_images(tmp_path / "test", {"cat": 2, "dog": 2}, size=(6, 5), seed=1)
    make_images(tmp_path / "extra", {"x": 3}, size=(6, 5), seed=2)
    data = load_data("image-folder", path=tmp_path / "train", test=tmp_path / "test",
                     unlabeled=tmp_path / "extra")
    assert data.class_names == ("cat", "dog")  # folder names, sorted
    assert isinstance(data.train, ImageFolderDataset)
    assert data.train.info.input_shape == (3, 6, 5)
    assert data.train.info.class_names == ("cat", "dog")
    assert data.train.labels.tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert data.test.labels.tolist() == [0, 0, 1, 1]
    assert data.unlabeled.labels.tolist() == [NO_LABEL] * 3
    # lazy: the dataset holds paths, and no tensor of pixels
    assert all(p.suffix == ".png" for p in data.train.paths)
    assert not any(isinstance(v, torch.Tensor) and v.dim() > 1 for v in vars(data.train).values())
    assert data.preprocessing == {"kind": "image", "size": [6, 5], "channels": "RGB",
                                  "mean": [0.5] * 3, "std": [0.5] * 3}
    x, y = data.train[3]
    assert x.shape == (3, 6, 5) and x.dtype == torch.float32 and int(y) == 1
    raw = np.asarray(Image.open(data.train.paths[3]), dtype=np.float32) / 255.0
    assert torch.allclose(x, torch.from_numpy((raw.transpose(2, 0, 1) - 0.5) / 0.5))


def test_preprocess_image_resizes_converts_and_normalises():
    image = Image.fromarray(np.full((10, 8, 3), 255, dtype=np.uint8))
    steps = {"kind": "image", "size": [4, 3], "channels": "L", "mean": [0.25], "std": [0.5]}
    x = preprocess_image(image, steps)
    assert x.shape == (1, 4, 3)
    assert torch.allclose(x, torch.full((1, 4, 3), 1.5))


def test_size_and_channels_options_and_check(tmp_path, make_images):
    make_images(tmp_path / "a", {"x": 2}, size=(6, 5))
    make_images(tmp_path / "a", {"y": 2}, size=(9, 7), seed=3)
    report = check_data("image-folder", path=tmp_path / "a", test_fraction=0.5, size=[4, 4],
                        channels="L", mean=[0.1], std=[0.2])
    assert report.input_kind == "image" and report.input_shape == (1, 4, 4)
    assert report.class_names == ("x", "y") and report.counts == {"train": 2, "test": 2}
    data = load_data("image-folder", path=tmp_path / "a", test_fraction=0.5, size=[4, 4],
                     channels="L", mean=[0.1], std=[0.2])
    assert data.train[0][0].shape == (1, 4, 4)
    assert data.preprocessing["mean"] == [0.1] and data.preprocessing["std"] == [0.2]


def test_grey_images_default_to_one_channel(tmp_path, make_images):
    make_images(tmp_path / "g", {"a": 2, "b": 2}, mode="L")
    data = load_data("image-folder", path=tmp_path / "g", test_fraction=0.5)
    assert data.preprocessing["channels"] == "L" and data.train.info.input_shape == (1, 6, 5)


def test_split_is_stratified_and_reproducible(tmp_path, make_images):
    make_images(tmp_path / "s", {"a": 10, "b": 20}, size=(2, 2))
    first = load_data("image-folder", path=tmp_path / "s", test_fraction=0.3, split_seed=4)
    again = load_data("image-folder", path=tmp_path / "s", test_fraction=0.3, split_seed=4)
    other = load_data("image-folder", path=tmp_path / "s", test_fraction=0.3, split_seed=5)
    assert first.test.paths == again.test.paths and first.test.paths != other.test.paths
    assert torch.bincount(first.test.labels).tolist() == [3, 6]
    assert not set(first.test.paths) & set(first.train.paths)
    assert len(first.train) + len(first.test) == 30


def test_interface_matches_array_dataset(tmp_path, make_images):
    make_images(tmp_path / "i", {"a": 4, "b": 4}, size=(2, 2))
    train = load_data("image-folder", path=tmp_path / "i", test_fraction=0.25).train
    scarce = train.with_scarce_labels(2)
    assert int((scarce.labels != NO_LABEL).sum()) == 2
    assert len(scarce.labeled()) == 2 and len(scarce) == len(train)
    assert (train.unlabeled().labels == NO_LABEL).all()
    assert train.subset([0, 5]).paths == [train.paths[0], train.paths[5]]


def _bad(tmp_path, **options):
    options.setdefault("test_fraction", 0.5)
    with pytest.raises(DataError) as caught:
        check_data("image-folder", **options)
    return str(caught.value)


def test_missing_path_and_empty_folders(tmp_path, make_images):
    with pytest.raises(MissingDataError, match="does not exist"):
        check_data("image-folder", path=tmp_path / "nope", test_fraction=0.5)
    (tmp_path / "empty").mkdir()
    assert "is empty" in _bad(tmp_path, path=tmp_path / "empty")
    make_images(tmp_path / "c", {"a": 2})
    (tmp_path / "c" / "b").mkdir()
    (tmp_path / "c" / "b" / "notes.txt").write_text("x")
    message = _bad(tmp_path, path=tmp_path / "c")
    assert "class folder" in message and str(tmp_path / "c" / "b") in message


def test_loose_images_without_class_folders(tmp_path, make_images):
    make_images(tmp_path / "flat", {"a": 2})
    for path in (tmp_path / "flat" / "a").iterdir():
        path.rename(tmp_path / "flat" / path.name)
    (tmp_path / "flat" / "a").rmdir()
    assert "no class folders" in _bad(tmp_path, path=tmp_path / "flat")


def test_unreadable_and_truncated_images_are_named(tmp_path, make_images):
    make_images(tmp_path / "u", {"a": 2, "b": 2})
    broken = tmp_path / "u" / "a" / "000.png"
    broken.write_bytes(b"not an image at all")
    assert str(broken) in _bad(tmp_path, path=tmp_path / "u")
    make_images(tmp_path / "t", {"a": 2, "b": 2}, size=(32, 32))
    truncated = tmp_path / "t" / "b" / "001.png"
    truncated.write_bytes(truncated.read_bytes()[:-60])
    message = _bad(tmp_path, path=tmp_path / "t")
    assert str(truncated) in message and "truncated" in message


def test_truncated_jpeg_pixels_fail_on_read_naming_the_file(tmp_path, make_images):
    """verify() cannot see a JPEG's missing pixel data; decoding it names the file."""
    make_images(tmp_path / "j", {"a": 1, "b": 1}, size=(64, 64), suffix=".jpg")
    cut = tmp_path / "j" / "a" / "000.jpg"
    cut.write_bytes(cut.read_bytes()[: int(cut.stat().st_size * 0.8)])
    data = load_data("image-folder", path=tmp_path / "j", test=tmp_path / "j")
    with pytest.raises(DataError, match="000.jpg"):
        data.train[0]


def test_mixed_sizes_without_size_name_two_files(tmp_path, make_images):
    make_images(tmp_path / "m", {"a": 2}, size=(6, 5))
    make_images(tmp_path / "m", {"b": 2}, size=(8, 8), seed=1)
    message = _bad(tmp_path, path=tmp_path / "m")
    assert re.search(r"a/00\d\.png is 5x6 but .*b/00\d\.png is 8x8", message)
    assert "size=[height, width]" in message


def test_test_class_unknown_to_train(tmp_path, make_images):
    make_images(tmp_path / "tr", {"a": 2, "b": 2})
    make_images(tmp_path / "te", {"a": 1, "zebra": 1})
    message = _bad(tmp_path, path=tmp_path / "tr", test=tmp_path / "te", test_fraction=None)
    assert "'zebra'" in message and "training folder lacks" in message


def test_mean_with_wrong_channel_count(tmp_path, make_images):
    make_images(tmp_path / "w", {"a": 2, "b": 2})
    assert "give 1 or 3" in _bad(tmp_path, path=tmp_path / "w", mean=[0.1, 0.2])
