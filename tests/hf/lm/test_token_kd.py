"""Token-level divergences and the chunked token KD loss, against float64 references."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from distill.lm.heads import HiddenStates, read_hidden_states
from distill.losses.divergences import divergence
from distill.losses.token_kd import TokenKDLoss
from distill.teachers.targets import TopKTargets


def _logits(*shape, seed=0, scale=3.0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


def _reference(p_logits, q_logits, kind, beta=0.5, t=1.0):
    p = F.softmax(p_logits.double() / t, -1)
    q = F.softmax(q_logits.double() / t, -1)
    kl = lambda a, b: (a * (a.log() - b.log())).sum(-1)  # noqa: E731
    if kind == "forward_kl":
        return kl(p, q)
    if kind == "reverse_kl":
        return kl(q, p)
    m = beta * p + (1 - beta) * q
    return beta * kl(p, m) + (1 - beta) * kl(q, m)


@pytest.mark.parametrize("kind", ["forward_kl", "reverse_kl", "jsd"])
def test_divergences_match_float64_references(kind):
    p, q = _logits(6, 11, seed=1), _logits(6, 11, seed=2)
    got = divergence(p.log_softmax(-1), q.log_softmax(-1), kind, beta=0.3)
    torch.testing.assert_close(got.double(), _reference(p, q, kind, 0.3), rtol=1e-4, atol=1e-6)


def test_jsd_tends_to_the_two_kls_at_its_ends():
    p = _logits(4, 9, seed=3, scale=1.0).double().log_softmax(-1)
    q = _logits(4, 9, seed=4, scale=1.0).double().log_softmax(-1)
    small = divergence(p, q, "jsd", beta=1e-6) / 1e-6
    large = divergence(p, q, "jsd", beta=1 - 1e-6) / 1e-6
    torch.testing.assert_close(small, divergence(p, q, "forward_kl"), rtol=1e-3, atol=1e-5)
    torch.testing.assert_close(large, divergence(p, q, "reverse_kl"), rtol=1e-3, atol=1e-5)
    with pytest.raises(ValueError, match="0 < beta < 1"):
        TokenKDLoss("jsd", beta=1.0)


@pytest.mark.parametrize("kind", ["forward_kl", "reverse_kl", "jsd"])
def test_chunked_loss_equals_one_pass_in_value_and_gradient(kind):
    teacher = _logits(3, 10, 17, seed=5)
    labels = torch.randint(0, 17, (3, 10), generator=torch.Generator().manual_seed(0))
    labels[0, :4] = -100  # a prompt
    labels[2, 7:] = -100  # padding
    values, grads = [], []
    for chunk in (None, 3):
        student = _logits(3, 10, 17, seed=6).requires_grad_()
        loss = TokenKDLoss(kind, temperature=2.0, alpha=0.7, chunk_size=chunk)(
            student, teacher, labels)
        loss.backward()
        values.append(loss.detach())
        grads.append(student.grad)
    torch.testing.assert_close(values[0], values[1])
    torch.testing.assert_close(grads[0], grads[1])
    # and the value is the documented blend, over kept positions only
    keep = labels != -100
    d = _reference(teacher, student.detach(), kind, t=2.0)[keep].mean()
    ce = F.cross_entropy(student.detach()[keep].double(), labels[keep])
    torch.testing.assert_close(values[0].double(), 0.7 * 4 * d + 0.3 * ce, rtol=1e-4, atol=1e-5)


def test_masked_positions_change_nothing():
    teacher, student = _logits(2, 6, 9, seed=7), _logits(2, 6, 9, seed=8)
    labels = torch.zeros(2, 6, dtype=torch.long)
    labels[:, 3:] = -100
    loss = TokenKDLoss(chunk_size=2)
    before = loss(student, teacher, labels)
    student[:, 3:] += 50.0
    teacher[:, 4:] -= 20.0
    torch.testing.assert_close(loss(student, teacher, labels), before)
    labels[:] = -100
    assert loss(student.requires_grad_(), teacher, labels).item() == 0.0


@pytest.mark.parametrize("kind", ["forward_kl", "reverse_kl", "jsd"])
def test_topk_targets_with_every_token_kept_equal_dense(kind):
    teacher, student = _logits(2, 5, 8, seed=9), _logits(2, 5, 8, seed=10)
    sparse = TopKTargets.from_logits(teacher, k=8)
    loss = TokenKDLoss(kind, chunk_size=2)
    torch.testing.assert_close(loss(student, sparse), loss(student, teacher), rtol=1e-5,
                               atol=1e-6)


def test_hidden_states_give_the_same_loss_and_gradients_as_logits(make_llama):
    teacher, student = make_llama(layers=2, seed=1), make_llama(layers=1, seed=2)
    ids = torch.randint(0, 32, (2, 12), generator=torch.Generator().manual_seed(3))
    labels = ids.roll(-1, dims=1)
    labels[:, -1] = -100
    inputs = {"input_ids": ids}
    grads = []
    for chunk in (None, 5):
        loss = TokenKDLoss("jsd", chunk_size=chunk, alpha=0.5)
        s, t = loss.outputs(student, inputs), loss.outputs(teacher, inputs)
        assert isinstance(s, HiddenStates) == (chunk is not None)
        student.zero_grad()
        loss(s, t.to("cpu") if isinstance(t, HiddenStates) else t.detach(), labels).backward()
        grads.append([p.grad.clone() for p in student.parameters()])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_a_vocabulary_mismatch_says_to_share_a_tokenizer(make_llama):
    with pytest.raises(ValueError, match="share one tokenizer"):
        TokenKDLoss()(_logits(1, 4, 10), _logits(1, 4, 12))
    with pytest.raises(TypeError, match="chunk_size=None"):
        read_hidden_states(torch.nn.Linear(3, 3), torch.zeros(1, 3))
