"""Shared test setup: one torch thread (the CI box is small) and a private cache folder."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def cache_dir(tmp_path_factory, monkeypatch):
    """Point DISTILL_CACHE at an empty folder so no test reads or writes ~/.cache."""
    folder = tmp_path_factory.mktemp("distill-cache")
    monkeypatch.setenv("DISTILL_CACHE", str(folder))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    return folder
