"""Language models side by side: perplexity, KL, agreement, size, speed and sample text."""

from __future__ import annotations

import pytest

from distill.lm.compare import compare_lm
from distill.lm.data import causal_blocks


def test_compare_lm_reports_the_same_top_level_keys_as_classification(
        make_llama, lm_tokenizer, documents):
    teacher, student = make_llama(layers=2, hidden=16), make_llama(layers=1, hidden=8, seed=1)
    test = causal_blocks(documents[:10], lm_tokenizer, 16, name="held-out")
    result = compare_lm(teacher, student, test, tokenizer=lm_tokenizer, baseline=student,
                        latency_repeats=2, samples=2, max_new_tokens=4)
    for key in ("retention", "speedup", "compression", "baseline_retention"):
        assert isinstance(result[key], float), key
    t, s = result["teacher"], result["student"]
    assert result["retention"] == pytest.approx(t["perplexity"] / s["perplexity"])
    assert "kl_to_teacher" in s and "kl_to_teacher" not in t
    assert result["compression"] == pytest.approx(t["params"] / s["params"])
    assert len(result["generations"]) == 2
    assert set(result["generations"][0]) == {"prompt", "teacher", "student", "baseline"}


def test_generation_speed_is_measured_and_reported_where_positions_allow(
        make_llama, lm_tokenizer, documents):
    from distill.report.markdown import render_report

    teacher, student = make_llama(layers=2, hidden=16), make_llama(layers=1, hidden=8, seed=1)
    for model in (teacher, student):
        model.config.max_position_embeddings = 96  # rotary: no table to resize
    test = causal_blocks(documents[:10], lm_tokenizer, 16, name="held-out")
    result = compare_lm(teacher, student, test, latency_repeats=2, samples=0)
    assert set(result["generation_speed"]["student"]) == {"p64_t1"}  # 256 is too long
    assert result["generation_speedup"] == pytest.approx(
        result["student"]["decode_tokens_per_s"] / result["teacher"]["decode_tokens_per_s"])
    assert "## Generation speed" in render_report(result, "", {})
    from distill.report.html import _speed

    assert "<h3>Generation speed</h3>" in _speed(result) and "tokens/s" in _speed(result)
    short = compare_lm(make_llama(layers=1), make_llama(layers=1, seed=1), test,
                       latency_repeats=2, samples=0)
    assert "generation_speed" not in short  # 32 positions: no 64-token prompt fits
