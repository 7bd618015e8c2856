"""The IDX reader against files encoded by hand in the test."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from distill.data.idx import IDXFormatError, read_idx, read_idx_bytes

TYPE_CODES = {
    np.uint8: 0x08,
    np.int8: 0x09,
    np.int16: 0x0B,
    np.int32: 0x0C,
    np.float32: 0x0D,
    np.float64: 0x0E,
}


def encode_idx(array: np.ndarray) -> bytes:
    """The IDX layout: 0, 0, type code, ndim, big-endian uint32 dims, big-endian data."""
    code = TYPE_CODES[array.dtype.type]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


ARRAYS = {
    "uint8-images": np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
    "uint8-labels": np.array([3, 1, 4, 1, 5, 9], dtype=np.uint8),
    "int8": np.array([[-128, -1], [0, 127]], dtype=np.int8),
    "int16": np.array([-30000, 2, 300], dtype=np.int16),
    "int32": np.array([[-(2**31), 1], [7, 2**31 - 1]], dtype=np.int32),
    "float32": np.array([1.5, -2.25, 1e-3], dtype=np.float32),
    "float64": np.array([[np.pi], [-np.e]], dtype=np.float64),
}


@pytest.mark.parametrize("name", sorted(ARRAYS))
def test_read_idx_bytes_round_trip(name):
    array = ARRAYS[name]
    got = read_idx_bytes(encode_idx(array))
    assert got.shape == array.shape
    np.testing.assert_array_equal(got.astype(array.dtype), array)
    assert got.dtype.kind == array.dtype.kind and got.dtype.itemsize == array.dtype.itemsize


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_read_idx_file_round_trip(tmp_path, compress):
    array = np.random.default_rng(0).integers(0, 256, size=(5, 7, 6), dtype=np.uint8)
    raw = encode_idx(array)
    path = tmp_path / ("images.gz" if compress else "images")
    path.write_bytes(gzip.compress(raw) if compress else raw)
    got = read_idx(path)
    np.testing.assert_array_equal(got, array)
    assert got.dtype == np.uint8


def test_read_idx_accepts_str_paths(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(encode_idx(ARRAYS["uint8-labels"]))
    np.testing.assert_array_equal(read_idx(str(path)), ARRAYS["uint8-labels"])


@pytest.mark.parametrize(
    "data",
    [
        b"\x01\x00\x08\x01\x00\x00\x00\x01\x05",
        b"\x00\x07\x08\x01\x00\x00\x00\x01\x05",
        b"\x00\x00",
        b"",
    ],
    ids=["first-byte", "second-byte", "too-short", "empty"],
)
def test_bad_magic(data):
    with pytest.raises(IDXFormatError, match="thing.idx: not an IDX file"):
        read_idx_bytes(data, source="thing.idx")


def test_bad_magic_file_names_the_file(tmp_path):
    path = tmp_path / "not-idx.bin"
    path.write_bytes(b"PK\x03\x04 definitely not idx")
    with pytest.raises(IDXFormatError) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert "bad magic" in str(info.value)


def test_unknown_element_type():
    data = bytes([0, 0, 0x42, 1]) + struct.pack(">I", 1) + b"\x00"
    with pytest.raises(IDXFormatError, match="0x42"):
        read_idx_bytes(data)


def test_truncated_header():
    data = bytes([0, 0, 0x08, 3]) + struct.pack(">I", 2)  # promises 3 dims, holds 1
    with pytest.raises(IDXFormatError, match="truncated header"):
        read_idx_bytes(data, source="hdr.idx")


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("delta", [-1, -10, 3], ids=["one-short", "ten-short", "extra"])
def test_wrong_data_length_names_the_file(tmp_path, compress, delta):
    raw = encode_idx(ARRAYS["uint8-images"])
    raw = raw[:delta] if delta < 0 else raw + b"\x00" * delta
    path = tmp_path / "train-images.idx"
    path.write_bytes(gzip.compress(raw) if compress else raw)
    with pytest.raises(IDXFormatError) as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message
    assert "expected 24 bytes" in message and "(2, 3, 4)" in message


def test_truncated_gzip_stream_names_the_file(tmp_path):
    compressed = gzip.compress(encode_idx(ARRAYS["uint8-images"]))
    path = tmp_path / "cut.gz"
    path.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(IDXFormatError) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert "gzip" in str(info.value)


def test_idx_format_error_is_a_value_error():
    assert issubclass(IDXFormatError, ValueError)
