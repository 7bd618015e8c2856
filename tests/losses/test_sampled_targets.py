"""Sampled teacher targets are an unbiased estimate of the forward KL: averaged over many
draws, the loss and its gradient converge to the dense ones (top-k targets do not), a
deterministic teacher gives the dense value exactly, and what cannot be estimated is refused."""

from __future__ import annotations

import pytest
import torch

from distill import SampledTargets, TokenKDLoss, TopKTargets

VOCAB, DRAWS = 16, 20_000


def _draws(teacher: torch.Tensor, n: int, temperature: float) -> SampledTargets:
    """``DRAWS`` independent sets of ``n`` samples, as ``DRAWS`` positions of one sequence."""
    logits = teacher.expand(1, DRAWS, VOCAB)
    return SampledTargets.from_logits(logits, n, temperature,
                                      generator=torch.Generator().manual_seed(0))


def _value_and_grad(student: torch.Tensor, target, temperature: float, positions: int):
    z = student.clone().requires_grad_(True)
    loss = TokenKDLoss("forward", temperature=temperature, alpha=1.0)(
        z.expand(1, positions, VOCAB), target)
    loss.backward()
    return float(loss.detach()), z.grad.clone()  # the mean over positions: the Monte Carlo average


@pytest.mark.parametrize(("n", "temperature"), [(1, 1.0), (4, 2.0), (12, 1.0)])
def test_loss_and_gradient_converge_to_the_dense_ones(n, temperature):
    g = torch.Generator().manual_seed(1)
    teacher, student = torch.randn(VOCAB, generator=g) * 2, torch.randn(VOCAB, generator=g)
    dense_value, dense_grad = _value_and_grad(student, teacher.expand(1, 1, VOCAB),
                                              temperature, 1)
    value, grad = _value_and_grad(student, _draws(teacher, n, temperature), temperature, DRAWS)
    # a gradient entry is T² · (q − p̂) / T; p̂_i averages n·DRAWS draws, so its standard error
    # is at most 0.5 / sqrt(n·DRAWS): the tolerance is 5 standard errors of the T-scaled entry
    tolerance = 5 * 0.5 * temperature / (n * DRAWS) ** 0.5
    assert (grad - dense_grad).abs().max() < tolerance
    assert value == pytest.approx(dense_value, abs=4 * temperature**2 * 3 / (n * DRAWS) ** 0.5)


def test_top_k_targets_are_biased_where_sampling_is_not():
    g = torch.Generator().manual_seed(2)
    teacher, student = torch.randn(VOCAB, generator=g) * 2, torch.randn(VOCAB, generator=g)
    _, dense_grad = _value_and_grad(student, teacher.expand(1, 1, VOCAB), 1.0, 1)
    _, sampled_grad = _value_and_grad(student, _draws(teacher, 4, 1.0), 1.0, DRAWS)
    top4 = TopKTargets.from_logits(teacher.expand(1, 1, VOCAB), 4)
    _, topk_grad = _value_and_grad(student, top4, 1.0, 1)
    sampled_error = float((sampled_grad - dense_grad).abs().max())
    topk_error = float((topk_grad - dense_grad).abs().max())
    assert topk_error > 10 * sampled_error  # the tail's shape is lost, whatever the draws


def test_a_deterministic_teacher_gives_the_dense_value_exactly():
    teacher = torch.full((1, 3, VOCAB), -1e4)
    teacher[..., 5] = 10.0  # all of the mass on token 5
    student = torch.randn(1, 3, VOCAB)
    sampled = SampledTargets.from_logits(teacher, 3)
    assert sampled.indices.eq(5).all()
    loss = TokenKDLoss("forward", alpha=1.0)
    assert float(loss(student, sampled)) == pytest.approx(float(loss(student, teacher)),
                                                          abs=1e-5)


def test_the_blend_with_cross_entropy_and_masked_positions_match_dense_in_expectation():
    g = torch.Generator().manual_seed(3)
    teacher, student = torch.randn(VOCAB, generator=g), torch.randn(VOCAB, generator=g)
    labels = torch.randint(0, VOCAB, (1, DRAWS), generator=g)
    labels[0, ::2] = -100  # half the positions carry nothing
    loss = TokenKDLoss("forward", alpha=0.7, chunk_size=4096)
    dense = float(loss(student.expand(1, DRAWS, VOCAB), teacher.expand(1, DRAWS, VOCAB), labels))
    sampled = float(loss(student.expand(1, DRAWS, VOCAB), _draws(teacher, 8, 1.0), labels))
    assert sampled == pytest.approx(dense, abs=0.05)


def test_what_samples_cannot_estimate_is_refused():
    targets = SampledTargets.from_logits(torch.randn(1, 2, VOCAB), 4, temperature=2.0)
    student = torch.randn(1, 2, VOCAB)
    with pytest.raises(ValueError, match="estimate the forward KL only"):
        TokenKDLoss("reverse", temperature=2.0)(student, targets)
    with pytest.raises(ValueError, match="sampled at temperature 2.0; the loss uses 1.0"):
        TokenKDLoss("forward", temperature=1.0)(student, targets)
    with pytest.raises(ValueError, match="n must be >= 1"):
        SampledTargets.from_logits(student, 0)


def _hybrid_draws(teacher: torch.Tensor, k: int, n: int) -> SampledTargets:
    return SampledTargets.from_logits(teacher.expand(1, DRAWS, VOCAB), n, top_k=k,
                                      generator=torch.Generator().manual_seed(0))


def test_hybrid_targets_are_unbiased_and_less_noisy_than_draws_alone():
    g = torch.Generator().manual_seed(4)
    teacher, student = torch.randn(VOCAB, generator=g) * 2, torch.randn(VOCAB, generator=g)
    dense_value, dense_grad = _value_and_grad(student, teacher.expand(1, 1, VOCAB), 1.0, 1)
    hybrid = _hybrid_draws(teacher, 3, 3)
    assert hybrid.kept == 3 and hybrid.n == 6
    torch.testing.assert_close(hybrid.weights.sum(-1), torch.ones(1, DRAWS))
    value, grad = _value_and_grad(student, hybrid, 1.0, DRAWS)
    assert (grad - dense_grad).abs().max() < 5 * 0.5 / (3 * DRAWS) ** 0.5
    assert value == pytest.approx(dense_value, abs=0.02)

    def spread(targets: SampledTargets) -> float:  # per-position noise of the estimate
        z = student.expand(1, DRAWS, VOCAB).reshape(-1, VOCAB)
        return float(targets.rows().forward_kl(torch.log_softmax(z, -1)).std())

    assert spread(hybrid) < 0.75 * spread(_draws(teacher, 6, 1.0))  # 6 tokens a position each


def test_hybrid_targets_covering_the_support_are_exact():
    teacher = torch.randn(1, 4, VOCAB)
    student = torch.randn(1, 4, VOCAB)
    hybrid = SampledTargets.from_logits(teacher, 2, top_k=VOCAB - 1)  # one token left to draw
    loss = TokenKDLoss("forward", alpha=1.0)
    assert float(loss(student, hybrid)) == pytest.approx(float(loss(student, teacher)), abs=1e-5)


@pytest.mark.parametrize("fused", [True, False])
def test_hybrid_targets_give_the_same_loss_fused_or_not(fused):
    g = torch.Generator().manual_seed(5)
    teacher, student = torch.randn(2, 5, VOCAB, generator=g), torch.randn(2, 5, VOCAB, generator=g)
    labels = torch.randint(0, VOCAB, (2, 5), generator=g)
    hybrid = SampledTargets.from_logits(teacher, 4, 2.0, top_k=3, generator=g)
    z = student.clone().requires_grad_(True)
    TokenKDLoss("forward", temperature=2.0, alpha=0.5, fused=fused)(z, hybrid, labels).backward()
    reference = student.clone().requires_grad_(True)
    TokenKDLoss("forward", temperature=2.0, alpha=0.5, fused=False)(
        reference, hybrid, labels).backward()
    torch.testing.assert_close(z.grad, reference.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("top_k", [0, 3])
def test_stratified_draws_are_unbiased_and_far_less_noisy(top_k):
    g = torch.Generator().manual_seed(6)
    teacher, student = torch.randn(VOCAB, generator=g) * 2, torch.randn(VOCAB, generator=g)
    _, dense_grad = _value_and_grad(student, teacher.expand(1, 1, VOCAB), 1.0, 1)

    def draws(sampler: str) -> SampledTargets:
        return SampledTargets.from_logits(teacher.expand(1, DRAWS, VOCAB), 6, top_k=top_k,
                                          sampler=sampler,
                                          generator=torch.Generator().manual_seed(0))

    stratified = draws("stratified")
    _, grad = _value_and_grad(student, stratified, 1.0, DRAWS)
    assert (grad - dense_grad).abs().max() < 5 * 0.5 / (6 * DRAWS) ** 0.5  # unbiased

    def spread(targets: SampledTargets) -> float:
        z = torch.log_softmax(student.expand(DRAWS, VOCAB), -1)
        return float(targets.rows().forward_kl(z).std())

    assert spread(stratified) < 0.75 * spread(draws("multinomial"))


def test_an_unknown_sampler_is_refused():
    with pytest.raises(ValueError, match="sampler must be one of multinomial, stratified"):
        SampledTargets.from_logits(torch.randn(1, 2, VOCAB), 4, sampler="sorted")


@pytest.mark.parametrize("sampler", ["multinomial", "stratified"])
@pytest.mark.parametrize(("top_k", "temperature"), [(0, 1.0), (0, 2.0), (3, 1.5)])
def test_rows_drawn_together_equal_rows_drawn_one_by_one(sampler, top_k, temperature):
    """A cache draws a batch of rows at once, each with its own generator, reusing its work
    tensors from row to row: the draws must be those of one call per row, bit for bit."""
    logits = torch.randn(3, 5, VOCAB, generator=torch.Generator().manual_seed(4)) * 3
    logits[1, 2, :VOCAB - 2] = -float("inf")  # a position sure of two tokens
    def gens():
        return [torch.Generator().manual_seed(10 + r) for r in range(len(logits))]
    together = SampledTargets.from_logits_rows(logits, 6, temperature, top_k=top_k,
                                               sampler=sampler, generators=gens())
    alone = [SampledTargets.from_logits(logits[r:r + 1], 6, temperature, top_k=top_k,
                                        sampler=sampler, generator=g)
             for r, g in enumerate(gens())]
    assert torch.equal(together.indices, torch.cat([a.indices for a in alone]))
    assert torch.equal(together.entropy, torch.cat([a.entropy for a in alone]))
    if top_k:
        assert torch.equal(together.weights, torch.cat([a.weights for a in alone]))
        assert together.kept == top_k
    with pytest.raises(ValueError, match="3 rows of logits need as many generators, got 2"):
        SampledTargets.from_logits_rows(logits, 6, generators=gens()[:2])
