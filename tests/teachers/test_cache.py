"""Teacher-output caches: exact rows, reuse, resume, and refusal of damaged or stale caches."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import distill
from distill.data import load_digits
from distill.teachers import CachedTeacher, CacheError, StaleCacheError, TopKTargets, cache_teacher


@pytest.fixture(scope="module")
def data():
    return load_digits("train")


@pytest.fixture(scope="module")
def teacher(data):
    torch.manual_seed(0)
    model = distill.build_mlp((1, 8, 8), 10, hidden=(32,))
    distill.train_model(model, data, epochs=2, progress=False)
    return model.eval()


@pytest.fixture(scope="module")
def logits(teacher, data):
    with torch.no_grad():
        return teacher(data.inputs)


def _count_rows(module):
    """Count the rows the module is run on, through a forward hook."""
    seen = []
    handle = module.register_forward_hook(lambda m, args, out: seen.append(len(args[0])))
    return seen, handle


def _interrupt_after(module, calls: int):
    state = {"n": 0}

    def hook(m, args, out):
        state["n"] += 1
        if state["n"] > calls:
            raise KeyboardInterrupt

    return module.register_forward_hook(hook)


def _all_rows(cache: CachedTeacher):
    return cache.logits(torch.zeros(1), torch.arange(cache.rows))


def test_dense_float32_cache_holds_the_teachers_logits(tmp_path, teacher, data, logits):
    cache = cache_teacher(teacher, data, tmp_path / "c", dtype="float32", shard_rows=100,
                          progress=False)
    assert cache.rows == len(data) and len(cache.shards) == 15
    torch.testing.assert_close(_all_rows(cache), logits, rtol=1e-5, atol=1e-5)
    picks = torch.tensor([1437, 0, 731, 99, 100, 731])  # across shards, unsorted, repeated
    torch.testing.assert_close(cache.logits(torch.zeros(1), picks), logits[picks],
                               rtol=1e-5, atol=1e-5)


def test_float16_is_half_the_bytes_and_close(tmp_path, teacher, data, logits):
    c16 = cache_teacher(teacher, data, tmp_path / "16", progress=False)
    c32 = cache_teacher(teacher, data, tmp_path / "32", dtype="float32", progress=False)
    size = {c: sum(f.stat().st_size for f in c.path.glob("*.npy")) for c in (c16, c32)}
    assert size[c16] < 0.6 * size[c32]
    torch.testing.assert_close(_all_rows(c16), logits, rtol=2e-3, atol=2e-2)


def test_topk_cache_keeps_indices_values_and_rest(tmp_path, teacher, data, logits):
    cache = cache_teacher(teacher, data, tmp_path / "k", top_k=3, dtype="float32",
                          shard_rows=500, progress=False)
    got = _all_rows(cache)
    want = TopKTargets.from_logits(logits, 3)
    assert isinstance(got, TopKTargets) and got.vocab_size == 10 and got.k == 3
    assert torch.equal(got.indices, want.indices)
    torch.testing.assert_close(got.logits, want.logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got.rest, want.rest, rtol=1e-4, atol=1e-6)
    # per row: 3 indices (uint16 for a small vocabulary), 3 float32 logits, 1 float32 rest
    assert cache.stored_bytes() == len(data) * (3 * 2 + 3 * 4 + 4)
    files = sorted(p.name for p in cache.path.glob("*.npy"))
    assert files[:3] == ["shard-00000.indices.npy", "shard-00000.logits.npy",
                         "shard-00000.rest.npy"]


def test_a_complete_cache_is_reused_without_running_the_teacher(tmp_path, teacher, data):
    cache_teacher(teacher, data, tmp_path / "c", progress=False)
    seen, handle = _count_rows(teacher)
    try:
        cache_teacher(teacher, data, tmp_path / "c", progress=False)
    finally:
        handle.remove()
    assert seen == []


def test_an_interrupted_cache_resumes_without_duplicates_or_gaps(tmp_path, teacher, data):
    reference = cache_teacher(teacher, data, tmp_path / "ref", dtype="float32", shard_rows=300,
                              batch_size=128, progress=False)
    handle = _interrupt_after(teacher, calls=8)  # 8 batches of 128 rows: 3 whole shards of 300
    try:
        with pytest.raises(KeyboardInterrupt):
            cache_teacher(teacher, data, tmp_path / "c", dtype="float32", shard_rows=300,
                          batch_size=128, progress=False)
    finally:
        handle.remove()
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert not manifest["complete"] and [s["stop"] for s in manifest["shards"]] == [300, 600, 900]
    with pytest.raises(CacheError, match="incomplete cache \\(900 of 1438 rows\\)"):
        CachedTeacher(tmp_path / "c")

    seen, handle = _count_rows(teacher)
    try:
        resumed = cache_teacher(teacher, data, tmp_path / "c", dtype="float32", shard_rows=300,
                                batch_size=128, progress=False)
    finally:
        handle.remove()
    assert sum(seen) == len(data) - 900  # only the rows no finished shard held
    assert [(s.start, s.stop) for s in resumed.shards] == [
        (0, 300), (300, 600), (600, 900), (900, 1200), (1200, 1438)]
    torch.testing.assert_close(_all_rows(resumed), _all_rows(reference), rtol=0, atol=0)


def _shard_path(cache_dir, index=1, field="logits"):
    return cache_dir / f"shard-{index:05d}.{field}.npy"


def test_a_corrupt_shard_is_named_and_refused(tmp_path, teacher, data):
    cache_teacher(teacher, data, tmp_path / "c", shard_rows=500, progress=False)
    path = _shard_path(tmp_path / "c")
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0xFF  # one flipped byte in the data, same size
    path.write_bytes(bytes(raw))
    with pytest.raises(CacheError, match=r"shard-00001\.logits\.npy: shard 1 \(logits\) is corr"):
        CachedTeacher(tmp_path / "c")
    # a size-only check cannot see a flipped byte; that is why full verification is the default
    CachedTeacher(tmp_path / "c", verify="size")


def test_a_truncated_or_missing_shard_is_named_and_refused(tmp_path, teacher, data):
    cache_teacher(teacher, data, tmp_path / "c", shard_rows=500, progress=False)
    path = _shard_path(tmp_path / "c")
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CacheError, match=r"shard-00001\.logits\.npy.*truncated"):
        CachedTeacher(tmp_path / "c", verify="size")
    path.unlink()
    with pytest.raises(CacheError, match=r"shard-00001\.logits\.npy.*missing"):
        CachedTeacher(tmp_path / "c")


def test_building_again_repairs_a_damaged_shard(tmp_path, teacher, data, logits, caplog):
    cache_teacher(teacher, data, tmp_path / "c", dtype="float32", shard_rows=500,
                  progress=False)
    path = _shard_path(tmp_path / "c")
    path.write_bytes(path.read_bytes()[:-100])
    seen, handle = _count_rows(teacher)
    try:
        repaired = cache_teacher(teacher, data, tmp_path / "c", dtype="float32", shard_rows=500,
                                 progress=False)
    finally:
        handle.remove()
    assert "recomputing from row 500" in caplog.text
    assert sum(seen) == len(data) - 500
    torch.testing.assert_close(_all_rows(repaired), logits, rtol=1e-5, atol=1e-5)


def test_a_stale_cache_says_what_changed(tmp_path, teacher, data):
    cache_teacher(teacher, data, tmp_path / "c", progress=False)
    other = distill.build_mlp((1, 8, 8), 10, hidden=(32,))
    with pytest.raises(StaleCacheError, match="the teacher changed"):
        cache_teacher(other, data, tmp_path / "c", progress=False)
    with pytest.raises(StaleCacheError, match="the data changed \\(1438 rows → 1000\\)"):
        cache_teacher(teacher, data.subset(torch.arange(1000)), tmp_path / "c", progress=False)
    shuffled = data.subset(torch.randperm(len(data), generator=torch.Generator().manual_seed(0)))
    with pytest.raises(StaleCacheError, match="different inputs or order"):
        cache_teacher(teacher, shuffled, tmp_path / "c", progress=False)
    with pytest.raises(StaleCacheError, match="the setting 'top_k' changed \\(None → 5\\)"):
        cache_teacher(teacher, data, tmp_path / "c", top_k=5, progress=False)
    with pytest.raises(StaleCacheError, match="the teacher changed"):
        CachedTeacher(tmp_path / "c", teacher=other)
    CachedTeacher(tmp_path / "c", teacher=teacher, data=data)  # the right ones pass

    rebuilt = cache_teacher(teacher, data, tmp_path / "c", top_k=5, overwrite=True,
                            progress=False)
    assert rebuilt.kind == "topk" and sorted(p.name for p in rebuilt.path.glob("*"))[0] == (
        "manifest.json")


def test_relabeling_the_data_keeps_the_cache_valid(tmp_path, teacher, data):
    cache_teacher(teacher, data, tmp_path / "c", progress=False)
    CachedTeacher(tmp_path / "c", data=data.with_scarce_labels(100))


def test_an_unrelated_folder_is_not_overwritten(tmp_path, teacher, data):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(CacheError, match="is not a teacher cache"):
        cache_teacher(teacher, data, tmp_path / "mine", progress=False)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_bad_arguments_are_refused(tmp_path, teacher, data):
    with pytest.raises(ValueError, match="dtype must be one of"):
        cache_teacher(teacher, data, tmp_path / "c", dtype="int8")
    with pytest.raises(ValueError, match="top_k must be a positive integer"):
        cache_teacher(teacher, data, tmp_path / "c", top_k=0)
    with pytest.raises(TypeError, match="not a DataLoader"):
        cache_teacher(teacher, torch.utils.data.DataLoader(data), tmp_path / "c")


def test_float16_overflow_is_refused(tmp_path, data):
    huge = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    with torch.no_grad():
        huge[1].bias.fill_(1e6)
    with pytest.raises(ValueError, match="exceed float16's range"):
        cache_teacher(huge, data, tmp_path / "c16", progress=False)
    cache_teacher(huge, data, tmp_path / "c32", dtype="float32", progress=False)


def test_lookups_outside_the_cache_are_refused(tmp_path, teacher, data):
    cache = cache_teacher(teacher, data, tmp_path / "c", progress=False)
    with pytest.raises(IndexError, match="sample index 1438 is outside the cache's 1438 rows"):
        cache.logits(torch.zeros(1), torch.tensor([3, 1438]))
    with pytest.raises(ValueError, match="looked up by sample index"):
        cache.logits(torch.zeros(1))


def test_not_a_cache(tmp_path):
    with pytest.raises(CacheError, match="not a teacher cache"):
        CachedTeacher(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(CacheError, match="unreadable manifest"):
        CachedTeacher(tmp_path)


def test_sequence_outputs_are_cached_per_position(tmp_path):
    """Language-model-like outputs (samples, positions, vocabulary) keep their layout."""
    torch.manual_seed(0)
    tokens = torch.randint(0, 40, (30, 6))
    model = torch.nn.Sequential(torch.nn.Embedding(40, 8), torch.nn.Linear(8, 40))
    data = torch.utils.data.TensorDataset(tokens)
    cache = cache_teacher(model, data, tmp_path / "lm", top_k=4, shard_rows=7, progress=False)
    got = cache.logits(tokens[:3], torch.tensor([0, 29, 13]))
    assert got.indices.shape == (3, 6, 4) and got.rest.shape == (3, 6) and got.vocab_size == 40
    with torch.no_grad():
        want = TopKTargets.from_logits(model(tokens[[0, 29, 13]]), 4)
    assert torch.equal(got.indices, want.indices)
    np.testing.assert_allclose(got.rest.numpy(), want.rest.numpy(), rtol=1e-3, atol=1e-3)


def _student():
    torch.manual_seed(1)
    return distill.build_mlp((1, 8, 8), 10, hidden=(16,))


def test_training_from_a_float32_cache_matches_the_online_teacher(tmp_path, teacher, data):
    online = distill.distill(teacher, _student(), data, epochs=2, progress=False)
    cache = cache_teacher(teacher, data, tmp_path / "c", dtype="float32", progress=False)
    cached = distill.distill(cache, _student(), data, epochs=2, progress=False)
    for a, b in zip(online.student.parameters(), cached.student.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_training_from_a_topk_cache_learns_the_teacher_as_well_as_dense(tmp_path, teacher, data):
    test = load_digits("test")
    agreement = {}
    for k in (None, 3):
        cache = cache_teacher(teacher, data, tmp_path / str(k), top_k=k, progress=False,
                              source=teacher)
        result = distill.distill(cache, _student(), data, eval=test, epochs=15, lr=1e-2,
                                 loss=distill.KDLoss(2.0, alpha=1.0), progress=False)
        agreement[k] = result.metrics["agreement"]  # against the source module, on test data
    assert agreement[None] > 0.75
    assert agreement[3] > agreement[None] - 0.05


def test_training_data_that_is_not_the_cached_data_is_refused(tmp_path, teacher, data):
    cache = cache_teacher(teacher, data, tmp_path / "c", progress=False)
    with pytest.raises(StaleCacheError, match="holds 1438 rows but the training data has 1000"):
        distill.distill(cache, _student(), data.subset(torch.arange(1000)), progress=False)


def test_the_batch_is_sized_by_the_outputs_of_a_row(tmp_path, monkeypatch):
    """batch_size=None: a language model's rows (positions x vocabulary logits each) go a few
    at a time, never 256 at once; a classifier's tiny rows still go 256 at a time."""
    from distill.teachers import cache as cache_module

    torch.manual_seed(0)
    tokens = torch.randint(0, 40, (30, 6))
    model = torch.nn.Sequential(torch.nn.Embedding(40, 8), torch.nn.Linear(8, 40))
    seen = []
    model.register_forward_hook(lambda m, args, out: seen.append(len(out)))
    row_bytes = 6 * 40 * 4
    monkeypatch.setattr(cache_module, "BATCH_OUTPUT_BYTES", 4 * row_bytes)  # four rows' worth
    cache = cache_teacher(model, torch.utils.data.TensorDataset(tokens), tmp_path / "lm",
                          progress=False)
    assert seen == [1, 4, 4, 4, 4, 4, 4, 4, 1]  # the first row alone, then four at a time
    with torch.no_grad():
        assert torch.allclose(cache.logits(tokens[:5], torch.arange(5)).float(),
                              model(tokens[:5]), atol=1e-2)
    seen.clear()
    monkeypatch.undo()
    digits = load_digits()
    mlp = distill.build_mlp((1, 8, 8), 10, hidden=(16,))
    mlp.register_forward_hook(lambda m, args, out: seen.append(len(out)))
    cache_teacher(mlp, digits, tmp_path / "digits", progress=False)
    assert seen[:3] == [1, 256, 256] and sum(seen) == len(digits)
