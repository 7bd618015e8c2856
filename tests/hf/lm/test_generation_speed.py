"""Generation speed at batch 1: every call makes exactly the tokens asked for, each model and
setting gets its runs, and settings that do not fit the model are refused by name."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("transformers")

from distill.lm.speed import generation_speed, speed_table  # noqa: E402


def test_every_model_gets_each_setting_and_a_ratio_to_the_teacher(make_llama):
    teacher, student = make_llama(layers=4), make_llama(layers=1, seed=1)
    teacher.config.eos_token_id = student.config.eos_token_id = 5  # must not stop generation
    ids = torch.randint(6, 32, (3, 10))
    speeds = generation_speed({"teacher": teacher, "student": student}, ids,
                              prompt_lengths=(8, 16), threads=(1,), new_tokens=4, repeats=2)
    assert set(speeds) == {"teacher", "student"}
    for per_setting in speeds.values():
        assert set(per_setting) == {"p8_t1", "p16_t1"}
        for entry in per_setting.values():
            assert entry["runs"] == 2 and entry["prefill_ms"] > 0
            assert entry["decode_tokens_per_s"] > 0
    rows = speed_table(speeds)
    assert {r["model"] for r in rows} == {"teacher", "student"}
    assert all(r["speedup"] == pytest.approx(1.0) for r in rows if r["model"] == "teacher")
    assert teacher.training is False


def test_a_prompt_longer_than_the_model_is_refused(make_llama):
    with pytest.raises(ValueError, match=r"teacher: a prompt of 64 tokens and 4 new ones exceed "
                                         r"its 32 positions"):
        generation_speed({"teacher": make_llama(layers=1)}, torch.arange(10),
                         prompt_lengths=(64,), threads=(1,), new_tokens=4)
