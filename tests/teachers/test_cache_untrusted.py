"""Every file of a teacher cache is untrusted data: a damaged, edited or hostile manifest or shard
ends in a CacheError that names the cache's own file, never in a traceback, in rows taken from
the wrong place, or in facts about files outside the cache. (Builds killed part-way, and damage
of any kind as a property: test_cache_killed_builds.py; shared helpers: conftest.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from distill.teachers import CachedTeacher, CacheError, cache_teacher
from distill.teachers.manifest import checksum_of, shard_file

# the same as conftest.py's (its `kit` fixture checks), which tests cannot import
SHARD_ROWS = 9  # shards of 9, 9, 9, 9 and 4 rows
SECRET_BYTES = 48611  # the size of a file outside the cache that no message may disclose
SETTINGS = {"dense": {"dtype": "float32"}, "topk": {"top_k": 2, "dtype": "float16"}}


def _refusal(kit, folder: Path, **kwargs) -> str:
    with pytest.raises(CacheError) as info:
        kit.all_rows(CachedTeacher(folder, **kwargs))
    return str(info.value)


# 1. paths in the manifest never lead outside the cache folder


@pytest.mark.parametrize("name", ["../outside/values.npy", "ABSOLUTE/values.npy",
                                  "ABSOLUTE/secret.txt", "sub/../shard-00001.logits.npy", "..",
                                  ""])
def test_manifest_file_names_cannot_leave_the_cache(tmp_path, kit, built, outside, name):
    folder = kit.copy(built, "dense", tmp_path / "c")
    name = name.replace("ABSOLUTE", str(outside))
    target = (folder / name) if name else None
    kit.edit(folder, lambda m: kit.point_at(m, 1, "logits", name, target))
    message = _refusal(kit, folder)
    assert message.startswith(str(folder / "manifest.json"))
    assert "shards.1.files.logits.file" in message and str(SECRET_BYTES) not in message


@pytest.mark.parametrize("target", ["values.npy", "secret.txt", "missing.npy"])
def test_a_symlinked_shard_is_refused_whatever_it_points_at(tmp_path, kit, built, outside, target):
    folder = kit.copy(built, "dense", tmp_path / "c")
    shard = folder / shard_file(1, "logits")
    shard.unlink()
    shard.symlink_to(outside / target)
    # the worst case: the manifest vouches for the file the link points at
    kit.edit(folder, lambda m: kit.point_at(m, 1, "logits", shard.name, outside / target))
    message = _refusal(kit, folder)
    assert message == (f"{shard}: shard 1 (logits) is a symbolic link; cache files must be "
                       "regular files inside the cache folder")
    with pytest.raises(CacheError, match="symbolic link"):
        kit.all_rows(CachedTeacher(folder, verify="size"))


def test_refusals_say_nothing_about_files_outside_the_cache(tmp_path, kit, built, outside):
    """The same message whether the outside file exists or not: nothing about it leaks."""
    folder = kit.copy(built, "dense", tmp_path / "c")
    kit.edit(folder, lambda m: kit.point_at(m, 1, "logits", "../outside/secret.txt",
                                      outside / "secret.txt"))
    there = _refusal(kit, folder)
    (outside / "secret.txt").unlink()
    assert _refusal(kit, folder) == there
    manifest = folder / "manifest.json"
    (outside / "manifest.json").write_bytes(manifest.read_bytes())
    manifest.unlink()
    manifest.symlink_to(outside / "manifest.json")  # a manifest is never read through a link
    there = _refusal(kit, folder)
    assert there == f"{manifest}: the manifest is a symbolic link; cache files must be " \
                    "regular files inside the cache folder"
    (outside / "manifest.json").unlink()
    assert _refusal(kit, folder) == there


# 2. the manifest is validated, and sealed with a checksum

LAYOUT_EDITS = {
    "shard_rows one lower": (lambda m: m.update(shard_rows=SHARD_ROWS - 1), "shards.0.stop"),
    "shard_rows one higher": (lambda m: m.update(shard_rows=SHARD_ROWS + 1), "shards.0.stop"),
    "swapped shards": (lambda m: m["shards"].insert(1, m["shards"].pop(2)), "shards.1.index"),
    "shifted shards": (lambda m: [s.update(start=s["start"] + 1, stop=s["stop"] + 1)
                                  for s in m["shards"]], "shards.0.start"),
    "dropped shard": (lambda m: m["shards"].pop(2), "shards.2.start"),
    "duplicated shard": (lambda m: m["shards"].insert(2, m["shards"][1]), "shards.2.index"),
    "dense to topk": (lambda m: m["fingerprint"]["settings"].update(kind="topk", top_k=2),
                      "shards.0.files"),
    "topk without k": (lambda m: m["fingerprint"]["settings"].update(kind="topk"),
                       "fingerprint.settings.top_k"),
    "another shard's file": (lambda m: m["shards"][1]["files"].update(
        logits=dict(m["shards"][2]["files"]["logits"])), "shards.1.files.logits.file"),
    "complete but short": (lambda m: m["shards"].pop(), "complete"),
    "a string for an int": (lambda m: m["shards"][0].update(stop="9"), "shards.0.stop"),
    "a bool for an int": (lambda m: m.update(shard_rows=True), "shard_rows"),
    "a float for an int": (lambda m: m.update(shard_rows=9.0), "shard_rows"),
    "a negative start": (lambda m: m["shards"][0].update(start=-1), "shards.0.start"),
    "a huge vocabulary": (lambda m: m.update(vocab_size=2**70), "vocab_size"),
    "rows past the data": (lambda m: m["fingerprint"]["data"].update(rows=2**64),
                           "fingerprint.data.rows"),
    "a missing key": (lambda m: m.pop("vocab_size"), "vocab_size"),
    "an unknown key": (lambda m: m.update(surprise=1), "surprise"),
    "shards not a list": (lambda m: m.update(shards={"0": 1}), "shards"),
    "NaN": (lambda m: m.update(shard_rows=float("nan")), "NaN"),
    "another format": (lambda m: m.update(format="distill.teacher-cache/0"), "format"),
}


@pytest.mark.parametrize("edit", list(LAYOUT_EDITS))
def test_a_manifest_that_does_not_describe_its_shards_is_refused(tmp_path, kit, built, edit):
    change, field = LAYOUT_EDITS[edit]
    model, data, _ = built
    folder = kit.copy(built, "dense", tmp_path / "c")
    kit.edit(folder, change)
    message = _refusal(kit, folder)
    assert message.startswith(str(folder / "manifest.json")) and field in message
    with pytest.raises(CacheError) as resumed:  # building again refuses it the same way
        kit.build(model, data, folder, "dense")
    assert str(resumed.value).startswith(message) and "overwrite=True" in str(resumed.value)


def test_a_manifest_that_does_not_describe_its_shards_is_rebuilt_on_overwrite(tmp_path, kit, built):
    model, data, reference = built
    folder = kit.copy(built, "topk", tmp_path / "c")
    kit.edit(folder, LAYOUT_EDITS["shard_rows one lower"][0])
    rebuilt = cache_teacher(model, data, folder, shard_rows=SHARD_ROWS, progress=False,
                            overwrite=True, **SETTINGS["topk"])
    assert kit.same(kit.all_rows(rebuilt), reference["topk"][1], exact=False)


def test_the_checksum_catches_an_edited_manifest_and_older_manifests_still_open(tmp_path, kit,
                                                                                built):
    folder = kit.copy(built, "dense", tmp_path / "c")
    m = json.loads((folder / "manifest.json").read_text())
    assert m["checksum"] == checksum_of(m)  # write_manifest seals what it writes
    kit.edit(folder, lambda m: m.update(distill_version="0.0.0"), reseal=False)
    assert "checksum: does not match" in _refusal(kit, folder)
    kit.edit(folder, lambda m: m.pop("checksum"), reseal=False)  # as written before the checksum
    assert kit.same(kit.all_rows(CachedTeacher(folder)), built[2]["dense"][1])
    kit.edit(folder, lambda m: m.update(shard_rows=SHARD_ROWS - 1), reseal=False)
    assert "shards.0.stop" in _refusal(kit, folder)  # without a checksum, still fully validated


# the .npy files must hold what the manifest says

NPY_REPLACEMENTS = {  # shard 1 of the dense float32 cache holds (9, 5) float32
    "float16": np.zeros((9, 5), np.float16),
    "float64": np.zeros((9, 5), np.float64),
    "big-endian": np.zeros((9, 5), ">f4"),
    "Fortran order": np.asfortranarray(np.arange(45, dtype=np.float32).reshape(9, 5)),
    "fewer columns": np.zeros((9, 4), np.float32),
    "more rows": np.zeros((10, 5), np.float32),
    "one more axis": np.zeros((9, 1, 5), np.float32),
    "not an npy": None,
}


@pytest.mark.parametrize("replacement", list(NPY_REPLACEMENTS))
def test_a_shard_must_hold_the_dtype_and_shape_the_manifest_says(tmp_path, kit, built, replacement):
    folder = kit.copy(built, "dense", tmp_path / "c")
    shard = folder / shard_file(1, "logits")
    array = NPY_REPLACEMENTS[replacement]
    if array is None:
        shard.write_bytes(b"\x93NUMPY\x01\x00" + b"garbage" * 20)
    else:
        np.save(shard, array)
    kit.edit(folder, lambda m: kit.point_at(m, 1, "logits", shard.name, shard))  # resealed to match
    assert _refusal(kit, folder).startswith(f"{shard}: shard 1 (logits) ")


def test_the_manifest_row_layout_must_match_the_files(tmp_path, kit, built):
    folder = kit.copy(built, "dense", tmp_path / "c")
    kit.edit(folder, lambda m: m.update(vocab_size=4))
    assert "has shape (9, 5), the manifest says (9, 4)" in _refusal(kit, folder)
    kit.edit(folder, lambda m: m.update(vocab_size=5, row_shape=[1]))
    assert "has shape (9, 5), the manifest says (9, 1, 5)" in _refusal(kit, folder)


def test_stored_indices_outside_the_vocabulary_are_refused_when_read(tmp_path, kit, built):
    folder = kit.copy(built, "topk", tmp_path / "c")
    shard = folder / shard_file(1, "indices")
    indices = np.load(shard)
    indices[3, 0] = 5  # the vocabulary has 5 entries: 0..4
    np.save(shard, indices)
    kit.edit(folder, lambda m: kit.point_at(m, 1, "indices", shard.name, shard))
    cache = CachedTeacher(folder)
    cache.logits(torch.zeros(1), torch.tensor([0, 1, 10]))  # rows that are fine still read
    with pytest.raises(CacheError, match=r"shard-00001\.indices\.npy: shard 1 \(indices\) holds "
                                         "an index outside the vocabulary"):
        cache.logits(torch.zeros(1), torch.tensor([0, SHARD_ROWS + 3]))
