"""A teacher cache build killed part-way (before its first manifest, after its last shard,
while marking itself complete, with a shard half written) resumes from what is on disk,
computing again only what is missing or damaged; and, as a property, whatever the damage to a
cache's files, opening or building again refuses it by name or gives the same rows."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from distill.teachers import CachedTeacher, CacheError, cache_teacher
from distill.teachers.manifest import shard_file

# the same as conftest.py's (its `kit` fixture checks), which tests cannot import
ROWS, SHARD_ROWS = 40, 9  # shards of 9, 9, 9, 9 and 4 rows
SECRET_BYTES = 48611  # the size of a file outside the cache that no message may disclose
SETTINGS = {"dense": {"dtype": "float32"}, "topk": {"top_k": 2, "dtype": "float16"}}

# 1. a build killed after its last shard is finished, not refused

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
def test_a_build_killed_after_its_last_shard_is_completed_on_the_next_call(tmp_path, kit,
                                                                           built):
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

    resumed, computed = kit.build_counting(model, data, folder, "dense")
    assert computed == 0  # nothing computed again
    assert json.loads((folder / "manifest.json").read_text())["complete"]
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]
    assert kit.same(kit.all_rows(resumed), reference["dense"][1])
    assert kit.same(kit.all_rows(CachedTeacher(folder)), reference["dense"][1])


@pytest.mark.parametrize("damaged", [False, True])
def test_a_build_killed_after_its_last_shard_resumes_from_what_is_on_disk(tmp_path, kit, built,
                                                                         damaged):
    """The same on-disk state written by hand (with a shard's leftover temporary file); with a
    damaged last shard, only that shard is computed again."""
    model, data, reference = built
    folder = kit.copy(built, "topk", tmp_path / "c")
    kit.edit(folder, lambda m: m.update(complete=False))
    (folder / f".{shard_file(4, 'rest')}.k1ll3d.tmp").write_bytes(b"half a shard")
    if damaged:
        last = folder / shard_file(4, "rest")
        last.write_bytes(last.read_bytes()[:-3])
    resumed, computed = kit.build_counting(model, data, folder, "topk")
    assert computed == (ROWS - 4 * SHARD_ROWS if damaged else 0)
    assert not list(folder.glob(".*.tmp"))
    assert kit.same(kit.all_rows(resumed), reference["topk"][1], exact=not damaged)


def test_a_build_killed_before_its_first_manifest_starts_again(tmp_path, kit, built):
    model, data, reference = built
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / ".manifest.json.x8y2.tmp").write_text('{"format": ')
    rebuilt = kit.build(model, data, folder, "dense")
    assert kit.same(kit.all_rows(rebuilt), reference["dense"][1])
    assert sorted(p.name for p in folder.iterdir())[0] == "manifest.json"


# 2. property: whatever the damage, a CacheError naming the cache's file, or the same rows

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

    def _mutate_manifest(kit, draw, m, folder, outside):
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
            kit.point_at(m, i, field, name, folder / name if name else None)
        elif op == "complete":
            m["complete"] = not m.get("complete")

    def _damage_file(kit, draw, m, folder, outside):
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
            except Exception:  # noqa: BLE001 - a damaged header: numpy's parser raises
                return  # anything (SyntaxError, tokenize.TokenError, ...); nothing to replace
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
                    meta.update(bytes=len(raw), sha256=kit.sha(raw))

    def _refused_or_same(kit, folder: Path, outside_before: dict, reference, call,
                         exact: bool = True, vocab: bool = True) -> None:
        try:
            got = kit.all_rows(call())
        except CacheError as err:
            message = str(err)
            assert str(folder) in message, message
            assert f"{SECRET_BYTES} bytes" not in message, message
        else:
            assert kit.same(got, reference, exact, vocab)
        for path, raw in outside_before.items():
            assert path.read_bytes() == raw  # nothing outside the cache is ever written

    @settings(max_examples=200, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])
    @given(kind=st.sampled_from(sorted(SETTINGS)), data=st.data())
    def test_any_damage_is_refused_by_name_or_harmless(tmp_path, monkeypatch, kit, built,
                                                       outside, kind, data):
        monkeypatch.setattr(os, "fsync", lambda fd: None)  # durability is not tested here, and
        model, dataset, reference = built  # syncing every repaired shard was 80% of the time
        folder = kit.copy(built, kind, Path(tempfile.mkdtemp(dir=tmp_path)) / "c")
        before = {p: p.read_bytes() for p in outside.iterdir()}
        m = json.loads((folder / "manifest.json").read_text())
        for _ in range(data.draw(st.integers(1, 3))):
            damage = data.draw(st.sampled_from([_mutate_manifest, _damage_file]))
            try:
                damage(kit, data.draw, m, folder, outside)
            except (KeyError, IndexError, TypeError, AttributeError):
                continue  # an earlier change removed or replaced this place
        reseal = data.draw(st.sampled_from([True, True, True, False]))
        indent = data.draw(st.sampled_from([None, 1]))
        text = json.dumps(kit.seal(m) if reseal else m, indent=indent)
        (folder / "manifest.json").write_text(text)
        # the one value no file can contradict: a top-k cache's vocab_size (the files hold k
        # columns whatever it is). Only the checksum catches an edit of it, so with the
        # checksum recomputed, the rows must still be the same but vocab_size may differ.
        vocab = not (reseal and kind == "topk")
        _refused_or_same(kit, folder, before, reference[kind][1], lambda: CachedTeacher(folder),
                         vocab=vocab)
        # building again refuses (naming the cache) or repairs it: rows computed again
        _refused_or_same(kit, folder, before, reference[kind][1],
                         lambda: kit.build(model, dataset, folder, kind), exact=False,
                         vocab=vocab)
        with pytest.raises(CacheError):  # and damage never hides another teacher
            cache_teacher(nn.Linear(6, 5), dataset, folder, shard_rows=SHARD_ROWS,
                          progress=False, **SETTINGS[kind])
