"""Sampled teacher targets in the cache: stored and read back as the teacher's draws, the same
draws whatever the batching (a resumed build continues where it stopped), refused when built
differently or damaged, and trained on end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from distill.teachers import CachedTeacher, CacheError, SampledTargets, cache_teacher
from distill.teachers.manifest import seal, shard_file
from distill.teachers.store import StaleCacheError

ROWS = 30


@pytest.fixture
def teacher_and_data():
    torch.manual_seed(0)
    return nn.Linear(6, 5), TensorDataset(torch.randn(ROWS, 6))


def _build(teacher, data, folder, batch_size=8, **settings):
    options = {"samples": 6, "temperature": 2.0, "seed": 3, **settings}
    return cache_teacher(teacher, data, folder, shard_rows=7, batch_size=batch_size,
                         progress=False, **options)


def test_draws_and_entropy_are_stored_and_read_back(tmp_path, teacher_and_data):
    teacher, data = teacher_and_data
    cache = _build(teacher, data, tmp_path / "c")
    rows = cache.logits(torch.zeros(1), torch.arange(ROWS))
    assert isinstance(rows, SampledTargets)
    assert rows.indices.shape == (ROWS, 6) and rows.temperature == 2.0 and rows.vocab_size == 5
    with torch.no_grad():
        log_p = torch.log_softmax(teacher(data.tensors[0]) / 2.0, dim=-1)
    torch.testing.assert_close(rows.entropy, -(log_p.exp() * log_p).sum(-1), rtol=2e-3,
                               atol=2e-3)  # float16 on disk
    assert cache.stored_bytes() // ROWS == 6 * 2 + 2  # uint16 ids and a float16 entropy
    assert "samples=6" in repr(cache)


def test_each_row_draws_the_same_whatever_the_batching(tmp_path, teacher_and_data):
    teacher, data = teacher_and_data
    a = _build(teacher, data, tmp_path / "a", batch_size=8)
    b = _build(teacher, data, tmp_path / "b", batch_size=3)  # as a resumed build cuts them
    everything = torch.arange(ROWS)
    assert torch.equal(a.logits(torch.zeros(1), everything).indices,
                       b.logits(torch.zeros(1), everything).indices)
    other = _build(teacher, data, tmp_path / "c", seed=4)
    assert not torch.equal(a.logits(torch.zeros(1), everything).indices,
                           other.logits(torch.zeros(1), everything).indices)


def test_other_sampling_settings_make_a_stale_cache(tmp_path, teacher_and_data):
    teacher, data = teacher_and_data
    _build(teacher, data, tmp_path / "c")
    with pytest.raises(StaleCacheError, match="built differently"):
        _build(teacher, data, tmp_path / "c", seed=9)
    with pytest.raises(ValueError, match="samples must be a positive integer"):
        cache_teacher(teacher, data, tmp_path / "d", samples=0)


def _edit_shard(folder, field, change):
    """Rewrite shard 0's ``field`` and reseal the manifest, so only the values can tell."""
    path = folder / shard_file(0, field)
    array = np.load(path)
    change(array)
    np.save(path, array)
    manifest = json.loads((folder / "manifest.json").read_text())
    meta = manifest["shards"][0]["files"][field]
    import hashlib

    raw = path.read_bytes()
    meta.update(bytes=len(raw), sha256=hashlib.sha256(raw).hexdigest())
    (folder / "manifest.json").write_text(json.dumps(seal(manifest)))


@pytest.mark.parametrize(("field", "change", "message"), [
    ("indices", lambda a: a.__setitem__((0, 0), 7), "an index outside the vocabulary"),
    ("entropy", lambda a: a.__setitem__(0, np.nan), "NaN or Inf"),
    ("probs", lambda a: a.__setitem__((0, 0), -0.5), r"a probability outside \[0, 1\]"),
    ("rest", lambda a: a.__setitem__(0, np.nan), r"a probability outside \[0, 1\]"),
])
def test_damaged_draws_are_refused_when_read(tmp_path, teacher_and_data, field, change,
                                             message):
    teacher, data = teacher_and_data
    hybrid = {"top_k": 2} if field in ("probs", "rest") else {}
    _build(teacher, data, tmp_path / "c", **hybrid)
    _edit_shard(tmp_path / "c", field, change)
    cache = CachedTeacher(tmp_path / "c")
    with pytest.raises(CacheError, match=message):
        cache.logits(torch.zeros(1), torch.arange(3))


def test_a_manifest_mixing_kinds_is_refused(tmp_path, teacher_and_data):
    teacher, data = teacher_and_data
    _build(teacher, data, tmp_path / "c")
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    manifest["fingerprint"]["settings"]["top_k"] = 2
    (tmp_path / "c" / "manifest.json").write_text(json.dumps(seal(manifest)))
    # a sampled cache that says hybrid must hold the top k's probabilities: refused by name
    with pytest.raises(CacheError, match=r"expected \['entropy', 'indices', 'probs', 'rest'\]"):
        CachedTeacher(tmp_path / "c")
    manifest["fingerprint"]["settings"].update(kind="dense", top_k=None)
    (tmp_path / "c" / "manifest.json").write_text(json.dumps(seal(manifest)))
    with pytest.raises(CacheError, match="go with the kind 'sampled'"):
        CachedTeacher(tmp_path / "c")


def test_a_student_distils_from_cached_draws(tmp_path, make_llama_here):
    import distill
    from distill.data import DatasetInfo
    from distill.hf import TokenizedText
    from distill.lm import lm_metrics

    teacher, student = make_llama_here(4, 0), make_llama_here(1, 1)
    with torch.no_grad():  # a peaked teacher: something for the student to learn
        teacher.lm_head.weight.mul_(40)
    ids = torch.randint(3, 32, (24, 13), generator=torch.Generator().manual_seed(0))
    text = TokenizedText({"input_ids": ids[:, :-1]}, ids[:, 1:], DatasetInfo("t", (12,), 32))
    cache = cache_teacher(teacher, text, tmp_path / "c", samples=12, temperature=1.0,
                          progress=False)
    before = lm_metrics(student, text, teacher=teacher)["kl_to_teacher"]
    distill.distill(cache, student, text, epochs=4, batch_size=8, lr=1e-2, progress=False,
                    loss=distill.TokenKDLoss("forward", alpha=1.0), task="causal-lm")
    after = lm_metrics(student, text, teacher=teacher)["kl_to_teacher"]
    assert after < before


def test_padded_text_of_mixed_lengths_is_cached_and_read_at_its_stored_length(
        tmp_path, make_llama_here):
    """Prompt/completion text is padded to one length but cut, batch by batch, to its longest
    row; per-position cached outputs keep the stored length, so the cache and the training
    both read the text at that length (a cut batch once failed the shape check)."""
    import distill
    from distill.data import DatasetInfo
    from distill.hf import TokenizedText

    teacher, student = make_llama_here(2, 0), make_llama_here(1, 1)
    ids = torch.randint(3, 32, (16, 12), generator=torch.Generator().manual_seed(0))
    lengths = torch.tensor([4, 6] * 8)  # every batch of 4 uses at most 6 of 12 columns
    mask = (torch.arange(12) < lengths[:, None]).long()
    labels = torch.where(mask.bool(), ids, torch.full_like(ids, -100))
    text = TokenizedText({"input_ids": ids * mask, "attention_mask": mask}, labels,
                         DatasetInfo("t", (12,), 32))
    assert text.collate([text[i] for i in range(4)])["input_ids"].shape == (4, 6)  # cut
    cache = cache_teacher(teacher, text, tmp_path / "c", samples=4, batch_size=4,
                          progress=False)
    assert cache.manifest["row_shape"] == [12]
    result = distill.distill(cache, student, text, epochs=1, batch_size=4, progress=False,
                             loss=distill.TokenKDLoss("forward", alpha=0.5), task="causal-lm")
    assert result.history and text.trim_padding  # the caller's text is left as it was


@pytest.fixture
def make_llama_here():
    transformers = pytest.importorskip("transformers")

    def make(layers, seed):
        torch.manual_seed(seed)
        return transformers.LlamaForCausalLM(transformers.LlamaConfig(
            vocab_size=32, hidden_size=16, num_hidden_layers=layers, num_attention_heads=2,
            num_key_value_heads=1, intermediate_size=32, max_position_embeddings=32)).eval()
    return make


class _Positions(nn.Module):
    """A teacher with a row of 4 positions per sample, as a language model's."""

    def forward(self, x):
        return torch.stack([x[:, :5] * (i + 1) for i in range(4)], dim=1)


def test_the_cache_says_what_it_costs_per_position(tmp_path):
    data = TensorDataset(torch.randn(12, 6))
    cache = cache_teacher(_Positions(), data, tmp_path / "c", samples=3, progress=False)
    line = cache.describe()
    assert "12 rows" in line and "sampled n=3" in line
    assert "8.0 bytes per position (4 per row)" in line  # 3 uint16 ids + a float16 entropy


def test_a_cache_larger_than_the_free_disk_is_refused_before_anything_is_written(
        tmp_path, teacher_and_data, monkeypatch):
    import shutil
    from collections import namedtuple

    teacher, data = teacher_and_data
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**6, 10**6 - 100, 100))
    with pytest.raises(CacheError, match=r"disk has 100 bytes free; nothing more was written"):
        cache_teacher(teacher, data, tmp_path / "c", progress=False)  # dense: 10 bytes a row
    assert not list((tmp_path / "c").glob("*.npy"))


def test_hybrid_caches_keep_the_top_k_exactly_and_draw_the_rest(tmp_path, teacher_and_data):
    teacher, data = teacher_and_data
    cache = _build(teacher, data, tmp_path / "h", top_k=2, samples=3)
    rows = cache.logits(torch.zeros(1), torch.arange(ROWS))
    assert rows.kept == 2 and rows.n == 5
    with torch.no_grad():
        p = torch.softmax(teacher(data.tensors[0]) / 2.0, dim=-1)
    top, top_ids = p.topk(2, dim=-1)
    assert torch.equal(rows.indices[:, :2], top_ids)
    torch.testing.assert_close(rows.weights[:, :2], top, rtol=2e-3, atol=2e-3)  # float16
    drawn = rows.indices[:, 2:]
    assert not (drawn.unsqueeze(-1) == top_ids.unsqueeze(1)).any()  # only from the rest
    assert cache.stored_bytes() // ROWS == 5 * 2 + 2 + 2 * 2 + 2
    assert "top-2 + sampled n=3" in cache.describe() and "top_k=2" in repr(cache)
    again = _build(teacher, data, tmp_path / "h", top_k=2, samples=3)  # reused as it is
    assert torch.equal(again.logits(torch.zeros(1), torch.arange(ROWS)).indices, rows.indices)
    with pytest.raises(StaleCacheError):
        _build(teacher, data, tmp_path / "h", samples=3)  # pure sampling: other settings


def test_the_sampler_is_part_of_the_cache_settings(tmp_path, teacher_and_data):
    teacher, data = teacher_and_data
    cache = _build(teacher, data, tmp_path / "s")  # stratified, the default
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert manifest["fingerprint"]["settings"]["sampler"] == "stratified"
    rows = cache.logits(torch.zeros(1), torch.arange(ROWS))
    assert rows.indices.shape == (ROWS, 6)
    with pytest.raises(StaleCacheError, match="built differently"):
        _build(teacher, data, tmp_path / "s", sampler="multinomial")  # another cache
    plain = _build(teacher, data, tmp_path / "m", sampler="multinomial")
    settings = json.loads((tmp_path / "m" / "manifest.json").read_text())["fingerprint"]
    assert "sampler" not in settings["settings"]  # as caches written before samplers were one
    assert plain.rows == ROWS
