from __future__ import annotations

import torch

import distill


def test_a_hugging_face_teacher_is_cached_on_text_and_taught_from_disk(make_bert, reviews,
                                                                       tmp_path):
    train, test = reviews
    teacher = make_bert(layers=2)
    cache = distill.cache_teacher(teacher, train, tmp_path / "outputs", progress=False)
    with torch.no_grad():
        expected = teacher(**{k: v[:4] for k, v in train.encodings.items()}).logits
    torch.testing.assert_close(cache.logits(None, torch.arange(4)), expected, atol=2e-3,
                               rtol=2e-3)  # float16 storage
    again = distill.cache_teacher(teacher, train, tmp_path / "outputs", progress=False)
    assert again.fingerprint() == cache.fingerprint()  # reused, not rebuilt
    student = make_bert(layers=1, seed=2)
    result = distill.distill(distill.CachedTeacher(tmp_path / "outputs"), student, train,
                             eval=test, epochs=1, batch_size=16, progress=False)
    assert 0.0 <= result.metrics["accuracy"] <= 1.0
