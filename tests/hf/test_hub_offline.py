"""A hub id that cannot be fetched fails in seconds, saying why, instead of retrying."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("transformers")

from distill.hf import hub  # noqa: E402
from distill.hf.io import load_model, load_tokenizer  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_probe():
    hub._probe.cache_clear()
    yield
    hub._probe.cache_clear()


def test_offline_variable_means_the_local_cache_only(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(OSError, match="HF_HUB_OFFLINE is set.*not in the local Hugging Face"):
        load_model("someone/no-such-model")
    with pytest.raises(OSError, match="HF_HUB_OFFLINE is set"):
        load_tokenizer("someone/no-such-model")
    assert time.monotonic() - start < 5


def test_an_unreachable_hub_is_found_out_at_once(monkeypatch):
    for name in hub.OFFLINE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    start = time.monotonic()
    with pytest.raises(OSError, match="cannot be reached"):
        load_model("someone/no-such-model")
    assert time.monotonic() - start < 10
