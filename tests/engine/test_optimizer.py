"""The optimizer the trainer builds: torch's fused Adam kernel where it applies."""

import pytest
import torch
from torch import nn

from distill.engine.config import TrainConfig, make_optimizer


@pytest.mark.parametrize("name", ["adamw", "adam"])
def test_float_cpu_parameters_get_the_fused_kernel_with_the_same_update(name):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    twin = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    twin.load_state_dict(model.state_dict())
    config = TrainConfig(lr=1e-2, optimizer=name, weight_decay=0.1)
    fused = make_optimizer(model, config)
    assert fused.defaults["fused"] is True
    loop = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam}[name](
        twin.parameters(), lr=1e-2, weight_decay=0.1, foreach=False)
    x, y = torch.randn(32, 8), torch.randint(0, 3, (32,))
    for _ in range(5):
        for net, opt in ((model, fused), (twin, loop)):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_parameters_the_fused_kernel_does_not_take_keep_the_loop():
    model = nn.Linear(4, 2).double()
    assert not make_optimizer(model, TrainConfig()).defaults.get("fused")
