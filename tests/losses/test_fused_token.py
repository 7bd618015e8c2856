"""The fused forward-KL token loss agrees with the autograd reference in value and gradient."""

from __future__ import annotations

import pytest
import torch

from distill import SampledTargets, TokenKDLoss, TopKTargets
from distill.losses import fused_token


def _case(seed: int, vocab: int = 37, batch: int = 2, length: int = 9):
    g = torch.Generator().manual_seed(seed)
    student = torch.randn(batch, length, vocab, generator=g) * 3
    teacher = torch.randn(batch, length, vocab, generator=g) * 3
    labels = torch.randint(0, vocab, (batch, length), generator=g)
    labels[0, :3] = -100  # a prompt that does not count
    labels[1, -1] = -100
    return student, teacher, labels


def _targets(kind: str, teacher: torch.Tensor, temperature: float):
    if kind == "dense":
        return teacher
    if kind == "topk":
        return TopKTargets.from_logits(teacher, 5)
    if kind == "sampled":
        g = torch.Generator().manual_seed(3)
        return SampledTargets.from_logits(teacher, 6, temperature, generator=g)
    return None


def _loss_and_grad(loss: TokenKDLoss, student, target, labels):
    student = student.clone().requires_grad_(True)
    value = loss(student, target, labels)
    value.backward()
    return value.detach(), student.grad


@pytest.mark.parametrize("kind", ["none", "dense", "topk", "sampled"])
@pytest.mark.parametrize("temperature", [1.0, 2.5])
@pytest.mark.parametrize("alpha", [0.0, 0.4, 1.0])
@pytest.mark.parametrize("chunk", [None, 4])
def test_fused_matches_the_reference(kind, temperature, alpha, chunk):
    if kind == "none" and alpha > 0:
        pytest.skip("without a teacher only alpha=0 is defined")
    student, teacher, labels = _case(seed=1)
    target = _targets(kind, teacher, temperature)
    settings = dict(temperature=temperature, alpha=alpha, chunk_size=chunk)
    ref_value, ref_grad = _loss_and_grad(TokenKDLoss("forward", fused=False, **settings),
                                         student, target, labels)
    value, grad = _loss_and_grad(TokenKDLoss("forward", **settings), student, target, labels)
    torch.testing.assert_close(value, ref_value, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-6)
    assert grad[0, :3].abs().max() == 0  # ignored positions get no gradient


def test_blocks_smaller_than_a_row_block_give_the_same_result(monkeypatch):
    student, teacher, labels = _case(seed=2, vocab=50, length=12)
    loss = TokenKDLoss("forward", temperature=2.0, alpha=0.5, chunk_size=None)
    whole = _loss_and_grad(loss, student, teacher, labels)
    monkeypatch.setattr(fused_token, "BLOCK_ENTRIES", 60)  # one position per block
    blocked = _loss_and_grad(loss, student, teacher, labels)
    torch.testing.assert_close(blocked[0], whole[0])
    torch.testing.assert_close(blocked[1], whole[1])


def test_half_precision_logits_get_a_half_precision_gradient():
    student, teacher, labels = _case(seed=4)
    loss = TokenKDLoss("forward", alpha=0.5, chunk_size=None)
    ref_value, ref_grad = _loss_and_grad(loss, student.bfloat16().float(), teacher, labels)
    value, grad = _loss_and_grad(loss, student.bfloat16(), teacher, labels)
    assert grad.dtype == torch.bfloat16
    torch.testing.assert_close(value, ref_value, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad.float(), ref_grad, rtol=1e-2, atol=1e-3)


def test_gradcheck_in_double_precision():
    g = torch.Generator().manual_seed(0)
    student = torch.randn(1, 3, 7, generator=g, dtype=torch.float64, requires_grad=True)
    teacher = torch.randn(1, 3, 7, generator=g)
    keep = torch.tensor([[True, False, True]])
    labels = torch.tensor([[1, 2, 6]])

    def f(z):  # float32 inside: compare against finite differences at a loose tolerance
        return fused_token.fused_token_loss(z, teacher.double(), labels, keep,
                                            temperature=1.5, alpha=0.3)

    value = f(student)
    value.backward()
    eps = 1e-2  # central differences: O(eps²) error, far above float32 rounding
    numeric = torch.zeros_like(student)
    for i in range(student.numel()):
        bump = torch.zeros_like(student).view(-1)
        bump[i] = eps
        bump = bump.view_as(student)
        numeric.view(-1)[i] = (f(student.detach() + bump) - f(student.detach() - bump)) / (2 * eps)
    torch.testing.assert_close(student.grad.float(), numeric.float(), rtol=2e-2, atol=2e-3)


def test_a_teacher_that_rules_tokens_out_gives_finite_values_as_the_reference():
    student, teacher, labels = _case(seed=5)
    teacher[..., :4] = -float("inf")  # e.g. a vocabulary mask: those tokens have p = 0
    settings = dict(temperature=2.0, alpha=0.5, chunk_size=4)
    ref = _loss_and_grad(TokenKDLoss("forward", fused=False, **settings), student, teacher,
                         labels)
    fused = _loss_and_grad(TokenKDLoss("forward", **settings), student, teacher, labels)
    assert torch.isfinite(fused[0]) and torch.isfinite(fused[1]).all()
    torch.testing.assert_close(fused[0], ref[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fused[1], ref[1], rtol=1e-4, atol=1e-6)


def _hidden_case(seed: int, bias: bool, width: int = 6, vocab: int = 29):
    from distill.lm.heads import HiddenStates

    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    head = torch.nn.Linear(width, vocab, bias=bias)
    hidden = torch.randn(2, 7, width, generator=g)
    teacher_head = torch.nn.Linear(width, vocab)
    teacher = HiddenStates(torch.randn(2, 7, width, generator=g) * 2, teacher_head)
    labels = torch.randint(0, vocab, (2, 7), generator=g)
    labels[1, :2] = -100
    return head, hidden, teacher, labels


@pytest.mark.parametrize("kind", ["none", "live", "dense", "topk", "sampled"])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("temperature", [1.0, 2.0])
@pytest.mark.parametrize("rows_per_block", [None, 3])
def test_hidden_states_and_a_linear_head_match_the_chunked_reference(
        kind, bias, temperature, rows_per_block, monkeypatch):
    """Also with blocks of 3 of the 14 positions: the buffers every block reuses (and the
    shorter last block) leave nothing of one block in the next."""
    from distill.lm.heads import HiddenStates

    if rows_per_block is not None:
        monkeypatch.setattr(fused_token, "BLOCK_ENTRIES", 29 * rows_per_block)

    head, hidden, teacher, labels = _hidden_case(seed=7, bias=bias)
    with torch.no_grad():
        logits = teacher.logits()
    target = {"none": None, "live": teacher, "dense": logits,
              "topk": TopKTargets.from_logits(logits, 4),
              "sampled": SampledTargets.from_logits(logits, 5, temperature,
                                                    generator=torch.Generator().manual_seed(1))}
    alpha = 0.0 if kind == "none" else 0.6
    results = []
    for fused in (False, True):
        head.zero_grad()
        h = hidden.clone().requires_grad_(True)
        loss = TokenKDLoss("forward", temperature=temperature, alpha=alpha, chunk_size=3,
                           fused=fused)
        value = loss(HiddenStates(h, head), target[kind], labels)
        value.backward()
        results.append((value.detach(), h.grad, head.weight.grad.clone(),
                        None if head.bias is None else head.bias.grad.clone()))
    (ref, fused) = results
    for a, b in zip(fused, ref, strict=True):
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_the_fused_head_needs_no_gradient_outside_training():
    from distill.lm.heads import HiddenStates

    head, hidden, teacher, labels = _hidden_case(seed=8, bias=False)
    loss = TokenKDLoss("forward", alpha=0.5)
    with torch.no_grad():
        value = loss(HiddenStates(hidden, head), teacher, labels)
        reference = TokenKDLoss("forward", alpha=0.5, fused=False)(HiddenStates(hidden, head),
                                                                   teacher, labels)
    torch.testing.assert_close(value, reference)
    assert not value.requires_grad
