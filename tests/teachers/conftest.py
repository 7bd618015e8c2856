"""What the teacher-cache tests share (test_cache_untrusted.py, test_cache_killed_builds.py): an
undamaged cache of each kind, files beside it, and helpers to copy, edit and read caches."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from distill.teachers import TopKTargets, cache_teacher

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


@pytest.fixture(scope="module")
def kit(request):
    """The helpers above, for tests to call (under --import-mode=importlib a conftest cannot be
    imported). A test module's own copies of the constants must be these."""
    for name in ("ROWS", "SHARD_ROWS", "SECRET_BYTES", "SETTINGS"):
        assert getattr(request.module, name, globals()[name]) == globals()[name], name
    return SimpleNamespace(build=_build, build_counting=_build_counting, all_rows=_all_rows,
                           same=_same, copy=_copy, sha=_sha, seal=_seal, edit=_edit,
                           point_at=_point_at)


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
