"""Every file of a teacher cache is untrusted data: a damaged, edited or hostile manifest or shard
ends in a CacheError that names the cache's own file, never in a traceback, in rows taken from
the wrong place, or in facts about files outside the cache; a killed build always resumes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from distill.teachers import CachedTeacher, CacheError, TopKTargets, cache_teacher
from distill.teachers.manifest import checksum_of, shard_file

ROWS, SHARD_ROWS = 40, 9  # shards of 9, 9, 9, 9 and 4 rows
SECRET_BYTES = 48611  # the size of a file outside the cache that no message may disclose
SETTINGS = {"dense": {"dtype": "float32"}, "topk": {"top_k": 2, "dtype": "float16"}}


def _build(model, data, folder, kind):
    return cache_teacher(model, data, folder, shard_rows=SHARD_ROWS, progress=False,
                         **SETTINGS[kind])


def _build_counting(model, data, folder, kind):
    """Build (or resume) a cache; the cache and how many rows the teacher computed for it."""
    seen = []
    handle = model.register_forward_hook(lambda m, args, out: seen.append(len(args[0])))
    try:
        return _build(model, data, folder, kind), sum(seen)
    finally:
        handle.remove()


def _all_rows(cache):
    return cache.logits(torch.zeros(1), torch.arange(cache.rows))


def _same(a, b, exact: bool = True, vocab: bool = True) -> bool:
    """The same targets; ``exact=False`` for rows computed again (a repair), which may differ
    in the last bit, one unit of float16's last place once stored as float16."""
    def equal(x, y, tolerance=1e-6):
        return x.shape == y.shape and (torch.equal(x, y) or not exact and torch.allclose(
            x, y, rtol=tolerance, atol=tolerance))

    if isinstance(a, TopKTargets) and isinstance(b, TopKTargets):
        return ((a.vocab_size == b.vocab_size or not vocab) and torch.equal(a.indices, b.indices)
                and equal(a.logits, b.logits, 1e-3) and equal(a.rest, b.rest))
    return not isinstance(a, TopKTargets) and not isinstance(b, TopKTargets) and equal(a, b)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One undamaged cache of each kind and every row it returns."""
    torch.manual_seed(0)
    model, data = nn.Linear(6, 5).eval(), TensorDataset(torch.randn(ROWS, 6))
    root = tmp_path_factory.mktemp("built")
    caches = {kind: _build(model, data, root / kind, kind) for kind in SETTINGS}
    return model, data, {kind: (c.path, _all_rows(c)) for kind, c in caches.items()}


@pytest.fixture
def outside(tmp_path):
    """Files beside the cache: a valid .npy of the right shape and a secret of known size."""
    folder = tmp_path / "outside"
    folder.mkdir()
    np.save(folder / "values.npy", np.full((SHARD_ROWS, 5), 7, np.float32))
    (folder / "secret.txt").write_bytes(b"s" * SECRET_BYTES)
    return folder


def _copy(built, kind, dest: Path) -> Path:
    shutil.copytree(built[2][kind][0], dest)
    return dest


def _sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _seal(m: dict) -> dict:
    """What write_manifest does, for manifests holding anything JSON can (NaN included)."""
    body = {k: v for k, v in m.items() if k != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return {**body, "checksum": hashlib.sha256(text.encode()).hexdigest()}


def _edit(folder: Path, change, reseal: bool = True) -> None:
    path = folder / "manifest.json"
    m = json.loads(path.read_text())
    change(m)
    path.write_text(json.dumps(_seal(m) if reseal else m, indent=2))


def _point_at(m: dict, shard: int, field: str, name: str, target: Path | None) -> None:
    """Make a manifest entry name ``name``, vouching for ``target``'s size and sha256."""
    entry = m["shards"][shard]["files"][field]
    entry["file"] = name
    if target is not None and target.is_file():
        raw = target.read_bytes()
        entry["bytes"], entry["sha256"] = len(raw), _sha(raw)


def _refusal(folder: Path, **kwargs) -> str:
    with pytest.raises(CacheError) as info:
        _all_rows(CachedTeacher(folder, **kwargs))
    return str(info.value)


# 1. paths in the manifest never lead outside the cache folder


@pytest.mark.parametrize("name", ["../outside/values.npy", "ABSOLUTE/values.npy",
                                  "ABSOLUTE/secret.txt", "sub/../shard-00001.logits.npy", "..",
                                  ""])
def test_manifest_file_names_cannot_leave_the_cache(tmp_path, built, outside, name):
    folder = _copy(built, "dense", tmp_path / "c")
    name = name.replace("ABSOLUTE", str(outside))
    target = (folder / name) if name else None
    _edit(folder, lambda m: _point_at(m, 1, "logits", name, target))
    message = _refusal(folder)
    assert message.startswith(str(folder / "manifest.json"))
    assert "shards.1.files.logits.file" in message and str(SECRET_BYTES) not in message


@pytest.mark.parametrize("target", ["values.npy", "secret.txt", "missing.npy"])
def test_a_symlinked_shard_is_refused_whatever_it_points_at(tmp_path, built, outside, target):
    folder = _copy(built, "dense", tmp_path / "c")
    shard = folder / shard_file(1, "logits")
    shard.unlink()
    shard.symlink_to(outside / target)
    # the worst case: the manifest vouches for the file the link points at
    _edit(folder, lambda m: _point_at(m, 1, "logits", shard.name, outside / target))
    message = _refusal(folder)
    assert message == (f"{shard}: shard 1 (logits) is a symbolic link; cache files must be "
                       "regular files inside the cache folder")
    with pytest.raises(CacheError, match="symbolic link"):
        _all_rows(CachedTeacher(folder, verify="size"))


def test_refusals_say_nothing_about_files_outside_the_cache(tmp_path, built, outside):
    """The same message whether the outside file exists or not: nothing about it leaks."""
    folder = _copy(built, "dense", tmp_path / "c")
    _edit(folder, lambda m: _point_at(m, 1, "logits", "../outside/secret.txt",
                                      outside / "secret.txt"))
    there = _refusal(folder)
    (outside / "secret.txt").unlink()
    assert _refusal(folder) == there
    manifest = folder / "manifest.json"
    (outside / "manifest.json").write_bytes(manifest.read_bytes())
    manifest.unlink()
    manifest.symlink_to(outside / "manifest.json")  # a manifest is never read through a link
    there = _refusal(folder)
    assert there == f"{manifest}: the manifest is a symbolic link; cache files must be " \
                    "regular files inside the cache folder"
    (outside / "manifest.json").unlink()
    assert _refusal(folder) == there


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
def test_a_manifest_that_does_not_describe_its_shards_is_refused(tmp_path, built, edit):
    change, field = LAYOUT_EDITS[edit]
    model, data, _ = built
    folder = _copy(built, "dense", tmp_path / "c")
    _edit(folder, change)
    message = _refusal(folder)
    assert message.startswith(str(folder / "manifest.json")) and field in message
    with pytest.raises(CacheError) as resumed:  # building again refuses it the same way
        _build(model, data, folder, "dense")
    assert str(resumed.value).startswith(message) and "overwrite=True" in str(resumed.value)


def test_a_manifest_that_does_not_describe_its_shards_is_rebuilt_on_overwrite(tmp_path, built):
    model, data, reference = built
    folder = _copy(built, "topk", tmp_path / "c")
    _edit(folder, LAYOUT_EDITS["shard_rows one lower"][0])
    rebuilt = cache_teacher(model, data, folder, shard_rows=SHARD_ROWS, progress=False,
                            overwrite=True, **SETTINGS["topk"])
    assert _same(_all_rows(rebuilt), reference["topk"][1], exact=False)


def test_the_checksum_catches_an_edited_manifest_and_older_manifests_still_open(tmp_path, built):
    folder = _copy(built, "dense", tmp_path / "c")
    m = json.loads((folder / "manifest.json").read_text())
    assert m["checksum"] == checksum_of(m)  # write_manifest seals what it writes
    _edit(folder, lambda m: m.update(distill_version="0.0.0"), reseal=False)
    assert "checksum: does not match" in _refusal(folder)
    _edit(folder, lambda m: m.pop("checksum"), reseal=False)  # as written before the checksum
    assert _same(_all_rows(CachedTeacher(folder)), built[2]["dense"][1])
    _edit(folder, lambda m: m.update(shard_rows=SHARD_ROWS - 1), reseal=False)
    assert "shards.0.stop" in _refusal(folder)  # without a checksum, still fully validated


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
def test_a_shard_must_hold_the_dtype_and_shape_the_manifest_says(tmp_path, built, replacement):
    folder = _copy(built, "dense", tmp_path / "c")
    shard = folder / shard_file(1, "logits")
    array = NPY_REPLACEMENTS[replacement]
    if array is None:
        shard.write_bytes(b"\x93NUMPY\x01\x00" + b"garbage" * 20)
    else:
        np.save(shard, array)
    _edit(folder, lambda m: _point_at(m, 1, "logits", shard.name, shard))  # resealed to match
    assert _refusal(folder).startswith(f"{shard}: shard 1 (logits) ")


def test_the_manifest_row_layout_must_match_the_files(tmp_path, built):
    folder = _copy(built, "dense", tmp_path / "c")
    _edit(folder, lambda m: m.update(vocab_size=4))
    assert "has shape (9, 5), the manifest says (9, 4)" in _refusal(folder)
    _edit(folder, lambda m: m.update(vocab_size=5, row_shape=[1]))
    assert "has shape (9, 5), the manifest says (9, 1, 5)" in _refusal(folder)


def test_stored_indices_outside_the_vocabulary_are_refused_when_read(tmp_path, built):
    folder = _copy(built, "topk", tmp_path / "c")
    shard = folder / shard_file(1, "indices")
    indices = np.load(shard)
    indices[3, 0] = 5  # the vocabulary has 5 entries: 0..4
    np.save(shard, indices)
    _edit(folder, lambda m: _point_at(m, 1, "indices", shard.name, shard))
    cache = CachedTeacher(folder)
    cache.logits(torch.zeros(1), torch.tensor([0, 1, 10]))  # rows that are fine still read
    with pytest.raises(CacheError, match=r"shard-00001\.indices\.npy: shard 1 \(indices\) holds "
                                         "an index outside the vocabulary"):
        cache.logits(torch.zeros(1), torch.tensor([0, SHARD_ROWS + 3]))


# 3. a build killed after its last shard is finished, not refused

KILLED_BUILD = """
import os, signal, sys, torch
import distill.teachers.cache as cache
saved, model = torch.load(sys.argv[1]), torch.nn.Linear(6, 5).eval()
model.load_state_dict({"weight": saved["weight"], "bias": saved["bias"]})
write_manifest, replace = cache.write_manifest, os.replace

def killed_while_marking_complete(folder, manifest):
    if manifest["complete"]:  # every shard is listed: die as the manifest is moved into place
        os.replace = lambda a, b: os.kill(os.getpid(), signal.SIGKILL) or replace(a, b)
    write_manifest(folder, manifest)

cache.write_manifest = killed_while_marking_complete
cache.cache_teacher(model, torch.utils.data.TensorDataset(saved["inputs"]), sys.argv[2],
                    dtype="float32", shard_rows=9, progress=False)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_build_killed_after_its_last_shard_is_completed_on_the_next_call(tmp_path, built):
    model, data, reference = built
    saved = tmp_path / "teacher.pt"
    torch.save({**model.state_dict(), "inputs": data.tensors[0]}, saved)
    folder = tmp_path / "c"
    done = subprocess.run([sys.executable, "-c", KILLED_BUILD, str(saved), str(folder)],
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr
    manifest = json.loads((folder / "manifest.json").read_text())
    assert not manifest["complete"] and manifest["shards"][-1]["stop"] == ROWS
    assert list(folder.glob(".manifest.json.*.tmp"))  # the killed write's leftover

    resumed, computed = _build_counting(model, data, folder, "dense")
    assert computed == 0  # nothing computed again
    assert json.loads((folder / "manifest.json").read_text())["complete"]
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]
    assert _same(_all_rows(resumed), reference["dense"][1])
    assert _same(_all_rows(CachedTeacher(folder)), reference["dense"][1])


@pytest.mark.parametrize("damaged", [False, True])
def test_a_build_killed_after_its_last_shard_resumes_from_what_is_on_disk(tmp_path, built,
                                                                         damaged):
    """The same on-disk state written by hand (with a shard's leftover temporary file); with a
    damaged last shard, only that shard is computed again."""
    model, data, reference = built
    folder = _copy(built, "topk", tmp_path / "c")
    _edit(folder, lambda m: m.update(complete=False))
    (folder / f".{shard_file(4, 'rest')}.k1ll3d.tmp").write_bytes(b"half a shard")
    if damaged:
        last = folder / shard_file(4, "rest")
        last.write_bytes(last.read_bytes()[:-3])
    resumed, computed = _build_counting(model, data, folder, "topk")
    assert computed == (ROWS - 4 * SHARD_ROWS if damaged else 0)
    assert not list(folder.glob(".*.tmp"))
    assert _same(_all_rows(resumed), reference["topk"][1], exact=not damaged)


def test_a_build_killed_before_its_first_manifest_starts_again(tmp_path, built):
    model, data, reference = built
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / ".manifest.json.x8y2.tmp").write_text('{"format": ')
    assert _same(_all_rows(_build(model, data, folder, "dense")), reference["dense"][1])
    assert sorted(p.name for p in folder.iterdir())[0] == "manifest.json"


# 4. property: whatever the damage, a CacheError naming the cache's file, or the same rows

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is a dev dependency
    st = None

if st is not None:
    VALUES = st.recursive(
        st.none() | st.booleans() | st.integers() | st.sampled_from([-1, 0, 2**31, 2**63, 10**30])
        | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=5)

    def _nodes(value, path=()):
        yield path, value
        items = value.items() if isinstance(value, dict) else (
            enumerate(value) if isinstance(value, list) else ())
        for key, inner in items:
            yield from _nodes(inner, (*path, key))

    def _at(m, path):
        for step in path:
            m = m[step]
        return m

    def _mutate_manifest(draw, m, folder, outside):
        places = [p for p, _ in _nodes(m) if p]
        op = draw(st.sampled_from(["replace", "tweak", "delete", "add", "shards", "settings",
                                   "path", "complete"]))
        if op in ("replace", "tweak", "delete") and places:
            path = draw(st.sampled_from(places))
            parent, key = _at(m, path[:-1]), path[-1]
            old = parent[key]
            if op == "delete":
                del parent[key]
            elif op == "tweak" and isinstance(old, int) and not isinstance(old, bool):
                parent[key] = draw(st.sampled_from([old + 1, old - 1, -old - 1, 0, 2**63,
                                                    float(old), str(old), old + 2**32]))
            else:
                parent[key] = draw(VALUES)
        elif op == "add":
            dicts = [p for p, v in _nodes(m) if isinstance(v, dict)]
            _at(m, draw(st.sampled_from(dicts)))[draw(st.text(max_size=6))] = draw(VALUES)
        elif op == "shards" and isinstance(m.get("shards"), list) and m["shards"]:
            shards = m["shards"]
            i, j = (draw(st.integers(0, len(shards) - 1)) for _ in range(2))
            how = draw(st.sampled_from(["swap", "drop", "duplicate", "reverse"]))
            if how == "swap":
                shards[i], shards[j] = shards[j], shards[i]
            elif how == "drop":
                shards.pop(i)
            elif how == "duplicate":
                shards.insert(j, json.loads(json.dumps(shards[i])))
            else:
                shards.reverse()
        elif op == "settings":
            key, value = draw(st.sampled_from([
                ("kind", "dense"), ("kind", "topk"), ("dtype", "float16"), ("dtype", "float32"),
                ("top_k", None), ("top_k", 1), ("top_k", 3), ("top_k", 5), ("top_k", 6),
                ("vocab_size", 4), ("vocab_size", 6), ("vocab_size", 70000),
                ("row_shape", []), ("row_shape", [1]), ("row_shape", [5]), ("row_shape", None),
                ("shard_rows", SHARD_ROWS - 1), ("shard_rows", SHARD_ROWS + 1)]))
            (m if key in m else m["fingerprint"]["settings"])[key] = value
        elif op == "path" and m.get("shards"):
            i = draw(st.integers(0, len(m["shards"]) - 1))
            field = draw(st.sampled_from(sorted(m["shards"][i]["files"])))
            other = draw(st.integers(0, len(m["shards"]) - 1))
            name = draw(st.sampled_from([
                "../outside/values.npy", f"{outside}/values.npy", f"{outside}/secret.txt",
                "../outside/missing.npy", "..", "", "manifest.json", "sub/x.npy",
                shard_file(other, field), shard_file(i, field).upper()]))
            _point_at(m, i, field, name, folder / name if name else None)
        elif op == "complete":
            m["complete"] = not m.get("complete")

    def _damage_file(draw, m, folder, outside):
        """Damage one shard file; resealing it in the manifest only where the result cannot
        be the right shape with other values (nothing could tell those from the right ones)."""
        files = sorted(p.name for p in folder.glob("shard-*.npy") if not p.is_symlink())
        if not files:
            return
        name = draw(st.sampled_from(files))
        path = folder / name
        raw = path.read_bytes()
        op = draw(st.sampled_from(["flip-header", "flip-data", "truncate", "append", "swap",
                                   "replace", "symlink"]))
        if op.startswith("flip") and raw:
            header = op == "flip-header" or len(raw) <= 128
            at = draw(st.integers(0, min(127, len(raw) - 1)) if header
                      else st.integers(128, len(raw) - 1))
            raw = bytearray(raw)
            raw[at] ^= draw(st.integers(1, 255))
            path.write_bytes(bytes(raw))
        elif op == "truncate" and raw:
            path.write_bytes(raw[:draw(st.integers(0, len(raw) - 1))])
        elif op == "append":
            path.write_bytes(raw + draw(st.binary(min_size=1, max_size=64)))
        elif op == "swap":
            other = folder / draw(st.sampled_from(files))
            path.write_bytes(other.read_bytes())
            other.write_bytes(raw)
        elif op == "replace":
            try:
                old = np.load(path)
            except (ValueError, OSError, EOFError):
                return
            shape = draw(st.sampled_from([old.shape, (len(old) + 1, *old.shape[1:]),
                                          (len(old) - 1, *old.shape[1:]), (*old.shape, 1),
                                          old.shape[:1], (len(old), 5), (len(old), 2)]))
            dtype = draw(st.sampled_from(["float16", "float32", "float64", "uint16", "int32",
                                          "int64"]))
            same = {old.dtype.name} | ({"uint16", "int32"} if ".indices." in name else set())
            if shape == old.shape and dtype in same:  # a valid file with other values:
                dtype = "float64"  # nothing could tell it from the right one
            np.save(path, np.zeros([max(d, 1) for d in shape], dtype))
        elif op == "symlink":
            path.unlink()
            path.symlink_to(outside / draw(st.sampled_from(["values.npy", "secret.txt", "no"])))
        target = path.resolve()  # for a link: what it points at, the worst case to vouch for
        if op in ("flip-data", "swap") or not target.is_file() or not draw(st.booleans()):
            return
        raw = target.read_bytes()
        for shard in m["shards"]:  # a mangled manifest raises here: the file stays unsealed
            for meta in shard["files"].values():
                if meta.get("file") == name:
                    meta.update(bytes=len(raw), sha256=_sha(raw))

    def _refused_or_same(folder: Path, outside_before: dict, reference, call,
                         exact: bool = True, vocab: bool = True) -> None:
        try:
            got = _all_rows(call())
        except CacheError as err:
            message = str(err)
            assert str(folder) in message, message
            assert f"{SECRET_BYTES} bytes" not in message, message
        else:
            assert _same(got, reference, exact, vocab)
        for path, raw in outside_before.items():
            assert path.read_bytes() == raw  # nothing outside the cache is ever written

    @settings(max_examples=200, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])
    @given(kind=st.sampled_from(sorted(SETTINGS)), data=st.data())
    def test_any_damage_is_refused_by_name_or_harmless(tmp_path, monkeypatch, built, outside,
                                                       kind, data):
        monkeypatch.setattr(os, "fsync", lambda fd: None)  # durability is not tested here, and
        model, dataset, reference = built  # syncing every repaired shard was 80% of the time
        folder = _copy(built, kind, Path(tempfile.mkdtemp(dir=tmp_path)) / "c")
        before = {p: p.read_bytes() for p in outside.iterdir()}
        m = json.loads((folder / "manifest.json").read_text())
        for _ in range(data.draw(st.integers(1, 3))):
            damage = data.draw(st.sampled_from([_mutate_manifest, _damage_file]))
            try:
                damage(data.draw, m, folder, outside)
            except (KeyError, IndexError, TypeError, AttributeError):
                continue  # an earlier change removed or replaced this place
        reseal = data.draw(st.sampled_from([True, True, True, False]))
        text = json.dumps(_seal(m) if reseal else m, indent=data.draw(st.sampled_from([None, 1])))
        (folder / "manifest.json").write_text(text)
        # the one value no file can contradict: a top-k cache's vocab_size (the files hold k
        # columns whatever it is). Only the checksum catches an edit of it, so with the
        # checksum recomputed, the rows must still be the same but vocab_size may differ.
        vocab = not (reseal and kind == "topk")
        _refused_or_same(folder, before, reference[kind][1], lambda: CachedTeacher(folder),
                         vocab=vocab)
        # building again refuses (naming the cache) or repairs it: rows computed again
        _refused_or_same(folder, before, reference[kind][1],
                         lambda: _build(model, dataset, folder, kind), exact=False, vocab=vocab)
        with pytest.raises(CacheError):  # and damage never hides another teacher
            cache_teacher(nn.Linear(6, 5), dataset, folder, shard_rows=SHARD_ROWS,
                          progress=False, **SETTINGS[kind])
