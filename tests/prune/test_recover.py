"""Prune, then recover by distillation from the unpruned model, or by fine-tuning."""

from __future__ import annotations

import pytest
import torch

import distill
from distill.data.digits import load_digits
from distill.evaluate.size import count_parameters
from distill.prune import overall_sparsity, prune_and_recover, step_ratios

pytest.importorskip("torch_pruning")


@pytest.fixture(scope="module")
def trained():
    train, test = load_digits("train"), load_digits("test")
    torch.manual_seed(0)
    model = distill.build_cnn((1, 8, 8), 10, channels=(16, 32), hidden=32)
    distill.train_model(model, train, epochs=8, batch_size=64, lr=3e-3, progress=False)
    return model, train, test


def test_step_ratios_compound_to_the_target():
    per_step = step_ratios(0.75, 2, "structured")
    assert (1 - per_step[0]) * (1 - per_step[1]) == pytest.approx(0.25)
    assert step_ratios(0.6, 3, "magnitude") == pytest.approx([0.2, 0.4, 0.6])


def test_distillation_recovers_a_pruned_model_and_leaves_the_original_alone(trained):
    model, train, test = trained
    params = count_parameters(model)
    original = {k: v.clone() for k, v in model.state_dict().items()}
    none = prune_and_recover(model, train, ratio=0.75, steps=2, recover="none",
                             example_inputs=test.inputs[:2])
    unrecovered = distill.evaluate_models({"m": none.model}, test)["m"]["accuracy"]
    result = prune_and_recover(model, train, ratio=0.75, steps=2, example_inputs=test.inputs[:2],
                               eval=test, epochs_per_step=3, batch_size=64, lr=3e-3,
                               progress=False)
    assert [s["step"] for s in result.steps] == [1, 2]
    assert count_parameters(result.model) < 0.2 * params
    assert result.metrics["accuracy"] > unrecovered + 0.05
    assert "agreement" in result.metrics  # measured against the unpruned teacher
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in original.items())


def test_masked_recovery_keeps_its_sparsity(trained):
    model, train, test = trained
    result = prune_and_recover(model, train, ratio=0.8, method="magnitude", steps=2,
                               recover="finetune", eval=test, batch_size=64, progress=False)
    assert overall_sparsity(result.model) == pytest.approx(0.8, abs=0.01)
    assert result.metrics["accuracy"] > 0.5
    with pytest.raises(ValueError, match="example_inputs"):
        prune_and_recover(model, train)
