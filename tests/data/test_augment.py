"""FlipShift: random flips and translations of whole image batches."""

from __future__ import annotations

import pytest
import torch

from distill.data import FlipShift, make_augmentation


def _images(n=6, c=1, h=8, w=8, seed=0):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed))


def _translate(image: torch.Tensor, dy: int, dx: int, fill: float) -> torch.Tensor:
    """``image`` (C, H, W) moved down by dy and right by dx, uncovered pixels set to ``fill``."""
    _, h, w = image.shape
    out = torch.full_like(image, fill)
    src_rows = slice(max(0, -dy), min(h, h - dy))
    dst_rows = slice(max(0, dy), min(h, h + dy))
    src_cols = slice(max(0, -dx), min(w, w - dx))
    dst_cols = slice(max(0, dx), min(w, w + dx))
    out[:, dst_rows, dst_cols] = image[:, src_rows, src_cols]
    return out


def _shifts_matching(original, augmented, pad):
    fill = float(original.min())
    return [
        (dy, dx)
        for dy in range(-pad, pad + 1)
        for dx in range(-pad, pad + 1)
        if torch.allclose(augmented, _translate(original, dy, dx, fill), rtol=0, atol=1e-6)
    ]


@pytest.mark.parametrize("shape", [(5, 1, 8, 8), (3, 3, 6, 9)])
@pytest.mark.parametrize("aug", [FlipShift(), FlipShift(pad=3, flip=False), FlipShift(pad=0)])
def test_output_shape_and_dtype(shape, aug):
    x = torch.rand(*shape)
    out = aug(x)
    assert out.shape == x.shape and out.dtype == x.dtype


def test_deterministic_under_manual_seed():
    x = _images(16)
    torch.manual_seed(123)
    a = FlipShift(pad=2)(x)
    torch.manual_seed(123)
    b = FlipShift(pad=2)(x)
    assert torch.equal(a, b)
    torch.manual_seed(124)
    c = FlipShift(pad=2)(x)
    assert not torch.equal(a, c)


def test_no_pad_no_flip_is_identity():
    x = _images()
    assert torch.equal(FlipShift(pad=0, flip=False)(x), x)


def test_input_is_not_modified():
    x = _images()
    before = x.clone()
    FlipShift(pad=2)(x)
    assert torch.equal(x, before)


def test_flip_only_mirrors_some_samples_horizontally():
    x = _images(64)
    torch.manual_seed(0)
    out = FlipShift(pad=0, flip=True)(x)
    flipped = [torch.equal(o, i.flip(2)) for o, i in zip(out, x, strict=True)]
    same = [torch.equal(o, i) for o, i in zip(out, x, strict=True)]
    assert all(f or s for f, s in zip(flipped, same, strict=True))
    assert 10 < sum(flipped) < 54  # about half, per sample


@pytest.mark.parametrize("pad", [1, 2, 3])
def test_one_hot_pixel_moves_by_at_most_pad(pad):
    n, h, w = 200, 11, 11
    x = torch.zeros(n, 1, h, w)
    x[:, 0, 5, 5] = 1.0
    torch.manual_seed(pad)
    out = FlipShift(pad=pad, flip=False)(x)
    moves = set()
    for image in out:
        assert image.sum() == 1.0 and image.max() == 1.0  # still exactly one lit pixel
        row, col = (image[0] == 1.0).nonzero()[0].tolist()
        dy, dx = row - 5, col - 5
        assert abs(dy) <= pad and abs(dx) <= pad
        moves.add((dy, dx))
    # every translation in the window shows up, including (0, 0)
    assert len(moves) == (2 * pad + 1) ** 2


def test_shifted_images_are_translated_copies_with_background_fill():
    x = _images(20, c=3, h=7, w=9) + 0.5  # background (minimum) is not zero
    torch.manual_seed(7)
    out = FlipShift(pad=2, flip=False)(x)
    for original, augmented in zip(x, out, strict=True):
        assert _shifts_matching(original, augmented, pad=2), "not a translation of the input"


def test_flip_and_shift_combined_is_a_translated_copy_of_input_or_its_mirror():
    x = _images(20)
    torch.manual_seed(3)
    out = FlipShift(pad=1, flip=True)(x)
    for original, augmented in zip(x, out, strict=True):
        assert _shifts_matching(original, augmented, 1) or _shifts_matching(
            original.flip(2), augmented, 1
        )


@pytest.mark.parametrize("shape", [(8, 8), (1, 8, 8), (2, 1, 1, 8, 8)])
def test_wrong_rank_is_refused(shape):
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        FlipShift()(torch.zeros(*shape))


def test_make_augmentation():
    assert make_augmentation("none") is None
    aug = make_augmentation("flip-shift")
    assert isinstance(aug, FlipShift) and (aug.pad, aug.flip) == (2, True)
    assert repr(aug) == "FlipShift(pad=2, flip=True)"
    with pytest.raises(ValueError, match="unknown augmentation"):
        make_augmentation("mixup")
