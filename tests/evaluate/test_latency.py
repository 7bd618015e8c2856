"""measure_latency on tiny models: shape of the result, and the state it must leave alone."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from distill.data import ArrayDataset, DatasetInfo
from distill.evaluate import measure_latency
from distill.evaluate.latency import ROUND_WARMUP, example_batch


class Recorder(nn.Module):
    """A tiny model that remembers the batch sizes, thread counts and modes it ran with."""

    def __init__(self, width=4, name="", log=None):
        super().__init__()
        self.linear = nn.Linear(6, width)
        self.calls: list[tuple[int, int, bool]] = []
        self.name, self.log = name, log if log is not None else []

    def forward(self, x):
        self.calls.append((x.shape[0], torch.get_num_threads(), self.training))
        self.log.append(self.name)
        return self.linear(x.flatten(1))


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(0)
    return ArrayDataset(
        torch.randn(20, 6, generator=g),
        torch.randint(0, 4, (20,), generator=g),
        DatasetInfo("toy", (6,), 4),
    )


def test_result_per_model_and_batch_size(data):
    models = {
        "big": nn.Sequential(nn.Linear(6, 64), nn.ReLU(), nn.Linear(64, 4)),
        "small": nn.Linear(6, 4),
    }
    out = measure_latency(models, data, batch_sizes=(1, 8), repeats=5, warmup=1)
    assert set(out) == {"big", "small"}
    for per_bs in out.values():
        assert set(per_bs) == {1, 8}
        for stats in per_bs.values():
            assert 0 < stats["p50"] <= stats["p95"]
            assert stats["runs"] == 5


def test_runs_interleaved_in_eval_mode_with_requested_threads(data):
    log: list[str] = []
    a, b = Recorder(name="a", log=log), Recorder(8, name="b", log=log)
    a.train()
    b.eval()
    before = torch.get_num_threads()
    measure_latency(
        {"a": a, "b": b}, data, batch_sizes=(1, 3), threads=2, warmup=2, repeats=4, rounds=2
    )
    per_round = 2 * (ROUND_WARMUP + 2)  # 2 batch sizes x (untimed + 2 timed calls)
    for model in (a, b):
        # warmup 2 + 4 timed runs + ROUND_WARMUP untimed calls per round, per batch size
        calls = 2 + 4 + 2 * ROUND_WARMUP
        assert sorted(bs for bs, _, _ in model.calls) == [1] * calls + [3] * calls
        assert {threads for _, threads, _ in model.calls} == {2}
        assert not any(training for _, _, training in model.calls)
    # warm-up model by model, then timed rounds alternate between the models
    assert log == ["a"] * 4 + ["b"] * 4 + (["a"] * per_round + ["b"] * per_round) * 2
    assert torch.get_num_threads() == before
    assert a.training is True and b.training is False


def test_restores_thread_count_and_modes_when_a_model_fails(data):
    class Broken(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    ok, broken = Recorder(), Broken()
    ok.train()
    broken.train()
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="boom"):
        measure_latency({"ok": ok, "broken": broken}, data, threads=2, repeats=2, warmup=1)
    assert torch.get_num_threads() == before
    assert ok.training and broken.training


def test_restores_a_thread_count_other_than_one(data):
    torch.set_num_threads(2)
    try:
        measure_latency(
            {"m": nn.Linear(6, 4)}, data, batch_sizes=(2,), threads=1, repeats=2, warmup=1
        )
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)


def test_example_batch_repeats_a_small_dataset():
    x = torch.arange(3, dtype=torch.float32)[:, None]
    batch = example_batch(TensorDataset(x), 8)
    assert batch[:, 0].tolist() == [0, 1, 2, 0, 1, 2, 0, 1]
    assert example_batch(TensorDataset(x), 2)[:, 0].tolist() == [0, 1]


def test_example_batch_repeats_dict_inputs():
    class Dicts(torch.utils.data.Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return {"ids": torch.tensor([i, i]), "mask": torch.tensor([1, 0]), "labels": i}

    batch = example_batch(Dicts(), 5)
    assert set(batch) == {"ids", "mask"}
    assert batch["ids"][:, 0].tolist() == [0, 1, 0, 1, 0]
    assert batch["mask"].shape == (5, 2)


@pytest.mark.parametrize("repeats", [3, 7, 50])
def test_exactly_the_requested_number_of_timed_runs(repeats):
    data = TensorDataset(torch.randn(4, 3))
    out = measure_latency({"m": nn.Linear(3, 2)}, data, batch_sizes=(1,), warmup=1,
                          repeats=repeats)
    assert out["m"][1]["runs"] == repeats


class Slow(nn.Module):
    """A model whose every call takes at least ``seconds``: a language model on long blocks."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds, self.calls = seconds, 0

    def forward(self, x):
        import time

        self.calls += 1
        time.sleep(self.seconds)
        return x


def test_a_slow_model_stops_at_the_time_budget_with_a_floor_of_runs():
    from distill.evaluate.latency import MIN_RUNS

    data = TensorDataset(torch.randn(4, 3))
    slow, fast = Slow(0.05), nn.Linear(3, 2)
    out = measure_latency({"slow": slow, "fast": fast}, data, batch_sizes=(1,), repeats=50,
                          budget_s=0.3)
    assert MIN_RUNS <= out["slow"][1]["runs"] <= 6  # 0.3 s of 0.05 s calls, not 50
    assert slow.calls <= out["slow"][1]["runs"] + 20 + 5  # warm-up about a second, one per round
    assert out["fast"][1]["runs"] == 50  # a fast model still gets every repeat
    assert out["slow"][1]["p50"] >= 50
    floor = measure_latency({"slow": Slow(0.05)}, data, batch_sizes=(1,), repeats=50,
                            budget_s=0.01)
    assert floor["slow"][1]["runs"] == MIN_RUNS
    every = measure_latency({"slow": Slow(0.001)}, data, batch_sizes=(1,), repeats=30,
                            budget_s=None)
    assert every["slow"][1]["runs"] == 30
