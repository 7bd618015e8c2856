"""``image-folder``: torchvision's ImageFolder layout, ``root/<class>/*.png``, decoded lazily.

Class names are the folder names in sorted order. Nothing is decoded up front: the dataset keeps
paths and Pillow decodes one image per ``__getitem__``, so a folder larger than memory still
trains. ``check`` (which ``load`` runs too) reads every file's header and runs Pillow's
``verify()``, so unreadable files, mixed sizes and unknown test classes fail before training.

Defaults: ``channels`` follows the first image (grey modes → ``"L"``, everything else →
``"RGB"``); ``mean``/``std`` are 0.5 per channel, mapping pixels from [0, 1] to [-1, 1] without a
pass over the data. The values used are returned as ``LoadedData.preprocessing`` so ``predict``
and ``eval`` can repeat them with :func:`preprocess_image`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import field_validator
from torch import Tensor
from torch.utils.data import Dataset

from distill.data.base import NO_LABEL, DatasetInfo, scarce_labels
from distill.data.formats import DATA_FORMATS
from distill.data.formats.base import (
    DataCheck,
    DataError,
    DataFormat,
    FolderSplits,
    LoadedData,
    SourceOptions,
    split_class_folders,
)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
DEFAULT_MEAN = 0.5
DEFAULT_STD = 0.5
GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


class ImageFolderOptions(SourceOptions):
    size: tuple[int, int] | None = None  # (height, width) every image is resized to
    channels: Literal["L", "RGB"] | None = None
    mean: list[float] | None = None
    std: list[float] | None = None

    @field_validator("size")
    @classmethod
    def _positive(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and min(value) <= 0:
            raise ValueError("size is [height, width] in pixels, both positive")
        return value

    @field_validator("std")
    @classmethod
    def _nonzero(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and any(s <= 0 for s in value):
            raise ValueError("every std must be positive")
        return value


def preprocess_image(image: Any, preprocessing: dict[str, Any]) -> Tensor:
    """A Pillow image as the float tensor (C, H, W) a student trained on this data expects.

    The steps, in order: convert to ``channels`` ("L" or "RGB"), resize to ``size`` [h, w]
    (bilinear) when it differs, scale 8-bit pixels to [0, 1], subtract ``mean`` and divide by
    ``std`` per channel. The dataset uses this very function, so new images get the same steps.
    """
    from PIL import Image

    channels, (height, width) = preprocessing["channels"], preprocessing["size"]
    if image.mode != channels:
        image = image.convert(channels)
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.float32) / 255.0
    array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    mean = np.asarray(preprocessing["mean"], dtype=np.float32).reshape(-1, 1, 1)
    std = np.asarray(preprocessing["std"], dtype=np.float32).reshape(-1, 1, 1)
    return torch.from_numpy(np.ascontiguousarray((array - mean) / std))


class ImageFolderDataset(Dataset):
    """Image files decoded on access; the same interface as :class:`~distill.data.ArrayDataset`.

    Holds only paths and labels (``NO_LABEL`` marks unlabeled samples); ``__getitem__`` returns
    ``(image tensor, label)``. A file that fails to decode is a :class:`DataError` naming it.
    """

    def __init__(self, paths: Sequence[Path], labels: Tensor, info: DatasetInfo,
                 preprocessing: dict[str, Any]):
        if len(paths) != len(labels):
            raise ValueError(f"{len(paths)} image paths but {len(labels)} labels")
        self.paths = list(paths)
        self.labels = labels.to(torch.long)
        self.info, self.preprocessing = info, preprocessing

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        from PIL import Image

        path = self.paths[int(index)]
        try:
            with Image.open(path) as image:
                image.load()
                pixels = preprocess_image(image, self.preprocessing)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
            raise DataError(f"image {path} cannot be decoded: {err}") from None
        return pixels, self.labels[int(index)]

    def _renamed(self, name: str | None) -> DatasetInfo:
        return self.info if name is None else dataclasses.replace(self.info, name=name)

    def subset(self, indices: Tensor | Sequence[int], name: str | None = None
               ) -> ImageFolderDataset:
        index = torch.as_tensor(indices, dtype=torch.long)
        return ImageFolderDataset([self.paths[i] for i in index.tolist()], self.labels[index],
                                  self._renamed(name), self.preprocessing)

    def labeled(self) -> ImageFolderDataset:
        """Only the images that carry a label."""
        keep = (self.labels != NO_LABEL).nonzero().flatten()
        return self.subset(keep, f"{self.info.name} (labeled)")

    def with_scarce_labels(self, num_labeled: int, seed: int = 0) -> ImageFolderDataset:
        """Keep ``num_labeled`` labels (balanced across classes); the rest become unlabeled."""
        labels = scarce_labels(self.labels, num_labeled, seed)
        return ImageFolderDataset(self.paths, labels,
                                  self._renamed(f"{self.info.name} ({num_labeled} labeled)"),
                                  self.preprocessing)

    def unlabeled(self) -> ImageFolderDataset:
        """The same images without labels: a transfer set for the teacher's targets alone."""
        return ImageFolderDataset(self.paths, torch.full_like(self.labels, NO_LABEL),
                                  self._renamed(f"{self.info.name} (unlabeled)"),
                                  self.preprocessing)


# ---------------------------------------------------------------------------------------------
# finding and checking the files


def read_header(path: Path) -> tuple[tuple[int, int], str]:
    """``((width, height), mode)`` from the file's header, after Pillow's ``verify()``.

    ``verify()`` reads the file without decoding pixels: it catches files Pillow cannot
    identify, broken headers, and for PNG truncation and corrupt chunks (checksums). It cannot
    catch truncated or corrupt pixel data in JPEG, GIF, BMP or WebP, which only decoding finds:
    those surface when the image is first read, as an error naming the file.
    """
    from PIL import Image

    try:
        with Image.open(path) as image:
            size, mode = image.size, image.mode
            image.verify()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise DataError(f"image {path} is unreadable or truncated: {err}") from None
    return size, mode


def _survey(options: ImageFolderOptions) -> tuple[FolderSplits, dict[str, Any]]:
    """Every file listed, labelled, split and header-checked: what check and load share."""
    splits = split_class_folders(options, IMAGE_SUFFIXES, "image")
    every = [*splits.train, *splits.test, *(splits.unlabeled or [])]
    headers = {path: read_header(path) for path in every}
    return splits, _preprocessing(options, headers)


def _preprocessing(options: ImageFolderOptions,
                   headers: dict[Path, tuple[tuple[int, int], str]]) -> dict[str, Any]:
    first, ((width, height), mode) = next(iter(headers.items()))
    if options.size is None:
        for path, (size, _) in headers.items():
            if size != (width, height):
                raise DataError(
                    f"images differ in size: {first} is {width}x{height} but {path} is "
                    f"{size[0]}x{size[1]} (width x height); set size=[height, width] to resize "
                    "them all"
                )
        size = [height, width]
    else:
        size = list(options.size)
    channels = options.channels or ("L" if mode in GREY_MODES else "RGB")
    count = 1 if channels == "L" else 3
    stats = {}
    for key, given, default in (("mean", options.mean, DEFAULT_MEAN),
                                ("std", options.std, DEFAULT_STD)):
        values = [default] * count if given is None else list(given)
        if len(values) == 1:
            values *= count
        if len(values) != count:
            raise DataError(f"image-folder {key} has {len(values)} values; {channels} images "
                            f"have {count} channel(s): give 1 or {count}")
        stats[key] = [float(v) for v in values]
    return {"kind": "image", "size": size, "channels": channels, **stats}


def _input_shape(preprocessing: dict[str, Any]) -> tuple[int, int, int]:
    height, width = preprocessing["size"]
    return (1 if preprocessing["channels"] == "L" else 3, int(height), int(width))


@DATA_FORMATS.register("image-folder", aliases=("images", "imagefolder"))
class ImageFolderFormat(DataFormat):
    """Folders of images, one per class (``root/<class>/*.png|jpg|jpeg|bmp|gif|webp``)."""

    name = "image-folder"
    Options = ImageFolderOptions

    @classmethod
    def check(cls, options: ImageFolderOptions) -> DataCheck:
        splits, preprocessing = _survey(options)
        return DataCheck(cls.name, "image", _input_shape(preprocessing),
                         splits.label_map.class_names, splits.counts())

    @classmethod
    def load(cls, options: ImageFolderOptions, tokenizer: Any = None) -> LoadedData:
        splits, preprocessing = _survey(options)
        names = splits.label_map.class_names
        shape = _input_shape(preprocessing)

        def dataset(paths: list[Path], labels: np.ndarray | None, split: str):
            info = DatasetInfo(f"{Path(options.path).name}/{split}", shape, len(names), names)
            tensor = (torch.full((len(paths),), NO_LABEL, dtype=torch.long) if labels is None
                      else torch.from_numpy(labels))
            return ImageFolderDataset(paths, tensor, info, preprocessing)

        unlabeled = (None if splits.unlabeled is None
                     else dataset(splits.unlabeled, None, "unlabeled"))
        return LoadedData(dataset(splits.train, splits.train_labels, "train"),
                          dataset(splits.test, splits.test_labels, "test"), unlabeled, names,
                          preprocessing)
