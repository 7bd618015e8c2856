"""Reader for the IDX format used by MNIST-family datasets (optionally gzip-compressed)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class IDXFormatError(ValueError):
    """The file is not a valid IDX file; the message names the file and what is wrong."""


def read_idx_bytes(data: bytes, source: str = "<bytes>") -> np.ndarray:
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise IDXFormatError(f"{source}: not an IDX file (bad magic number)")
    dtype = _DTYPES.get(data[2])
    if dtype is None:
        raise IDXFormatError(f"{source}: unknown IDX element type 0x{data[2]:02x}")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXFormatError(f"{source}: truncated header")
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = int(np.prod(dims)) * np.dtype(dtype).itemsize
    if len(data) - header != expected:
        raise IDXFormatError(
            f"{source}: expected {expected} bytes of data for shape {tuple(dims)}, "
            f"found {len(data) - header} (truncated or corrupt file)"
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)


def read_idx(path: str | Path) -> np.ndarray:
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise IDXFormatError(f"{path}: corrupt gzip stream ({err})") from err
    return read_idx_bytes(raw, str(path))
