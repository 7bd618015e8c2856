"""A shard written from row pieces is the file ``np.save`` writes for the stacked array, and
its recorded sha256 is the file's: the writer streams pieces instead of copying them into one
array first, and hashes them as they go instead of reading the file back."""

from __future__ import annotations

import numpy as np
import pytest

from distill.teachers.store import sha256_of, write_shard


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.uint16, np.int32])
def test_pieces_make_the_file_np_save_makes(tmp_path, dtype):
    rng = np.random.default_rng(0)
    whole = (rng.standard_normal((11, 3, 5)) * 100).astype(dtype)
    pieces = [whole[:4], whole[4:5], whole[5:]]
    shard = write_shard(tmp_path, 0, 7, {"logits": pieces})
    entry = shard.to_json()["files"]["logits"]
    written = tmp_path / entry["file"]
    np.save(tmp_path / "reference.npy", whole, allow_pickle=False)
    assert written.read_bytes() == (tmp_path / "reference.npy").read_bytes()
    assert entry["sha256"] == sha256_of(written)
    assert entry["bytes"] == written.stat().st_size
    assert (shard.start, shard.stop) == (7, 18)


def test_pieces_that_disagree_are_refused(tmp_path):
    with pytest.raises(ValueError, match="row count"):
        write_shard(tmp_path, 0, 0, {"a": [np.zeros((2, 3))], "b": [np.zeros((3, 3))]})
    with pytest.raises(ValueError, match="share their dtype and row shape"):
        write_shard(tmp_path, 0, 0, {"a": [np.zeros((2, 3)), np.zeros((1, 4))]})
    assert not any(tmp_path.iterdir())  # nothing half-written left behind
