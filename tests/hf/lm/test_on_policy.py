"""Student rollouts scored by the teacher, and token-level distillation through the engine."""

from __future__ import annotations

import pytest
import torch

import distill
from distill.lm import OnPolicy, causal_blocks, lm_metrics, prompt_completions


def test_a_rollout_keeps_each_prompt_and_learns_only_the_new_tokens(make_llama, lm_tokenizer):
    model = make_llama(layers=1).train()
    data = prompt_completions(["the film", "a very bad"], ["good", "plot"], lm_tokenizer)
    batch = {k: v for k, v in data.encodings.items()}
    inputs, labels = OnPolicy(prompt_length=3, max_new_tokens=4, temperature=0).rollout(
        model, batch, data.labels)
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    assert ids.shape == labels.shape == mask.shape and model.training
    width = ids.shape[1] - 4  # prompts: "the film" (2 tokens), "a very bad" (3): left-padded
    assert width == 3 and mask[0, :1].tolist() == [0] and mask[0, 1:width].tolist() == [1, 1]
    assert ids[0, 1:width].tolist() == data.encodings["input_ids"][0, :2].tolist()
    learned = labels != -100
    assert not learned[:, : width - 1].any()  # the prompt is context, never a target
    # each learned label is the token generated at the next position
    assert torch.equal(labels[:, width - 1 : -1][learned[:, width - 1 : -1]],
                       ids[:, width:][learned[:, width - 1 : -1]])
    assert inputs["position_ids"][0, 1].item() == 0  # positions start at the first real token


def test_plain_text_rows_are_cut_to_prompt_length(make_llama, lm_tokenizer, documents):
    data = causal_blocks(documents, lm_tokenizer, 10, max_blocks=2)
    inputs, labels = OnPolicy(prompt_length=4, max_new_tokens=3).rollout(
        make_llama(layers=1), dict(data.encodings), data.labels)
    assert inputs["input_ids"].shape == (2, 7)
    assert torch.equal(inputs["input_ids"][:, :4], data.encodings["input_ids"][:, :4])


def test_on_policy_distillation_brings_the_student_towards_the_teacher(
        make_llama, lm_tokenizer, documents):
    teacher, student = make_llama(layers=2, seed=4), make_llama(layers=1, seed=5)
    train = causal_blocks(documents[:30], lm_tokenizer, 12)
    held = causal_blocks(documents[30:], lm_tokenizer, 12)
    before = lm_metrics(student, held, teacher=teacher)["kl_to_teacher"]
    policy = OnPolicy(fraction=0.5, prompt_length=4, max_new_tokens=6, seed=1)
    calls = []
    original = policy.rollout
    policy.rollout = lambda *a: calls.append(1) or original(*a)
    steps = 6 * -(-len(train) // 8)
    result = distill.distill(teacher, student, train, eval=held, on_policy=policy,
                             loss=distill.TokenKDLoss("reverse_kl", chunk_size=4), epochs=6,
                             batch_size=8, lr=1e-2, progress=False)
    after = lm_metrics(student, held, teacher=teacher)["kl_to_teacher"]
    assert after < 0.7 * before
    # the engine evaluates a language model by perplexity and closeness to its teacher
    assert result.metrics["kl_to_teacher"] == pytest.approx(after, rel=1e-5)
    assert len(result.history) == 6 and "eval_perplexity" in result.history[0]
    assert 0.2 * steps < len(calls) < 0.8 * steps


def test_on_policy_needs_a_live_teacher(make_llama, lm_tokenizer, documents, tmp_path):
    teacher = make_llama(layers=1)
    train = causal_blocks(documents, lm_tokenizer, 8, max_blocks=4)
    cached = distill.cache_teacher(teacher, train, tmp_path / "c", progress=False)
    with pytest.raises(ValueError, match="only a live teacher module can score"):
        distill.distill(cached, make_llama(layers=1), train, loss=distill.TokenKDLoss(),
                        on_policy=OnPolicy(), progress=False)
    with pytest.raises(ValueError, match="on-policy fraction"):
        OnPolicy(fraction=1.5)


def test_the_hugging_face_trainer_distils_a_causal_lm_with_the_same_loss(
        make_llama, lm_tokenizer, documents, tmp_path):
    import transformers

    from distill.hf.trainer import DistillationTrainer, next_token_labels

    teacher, student = make_llama(layers=2, seed=4), make_llama(layers=1, seed=5)
    blocks = causal_blocks(documents, lm_tokenizer, 12)
    ids = blocks.encodings["input_ids"]
    rows = [{"input_ids": row, "labels": row} for row in ids]  # HF convention: unshifted
    loss = distill.TokenKDLoss("jsd", chunk_size=4)
    before = lm_metrics(student, blocks, teacher=teacher)["kl_to_teacher"]
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=20, per_device_train_batch_size=8,
        learning_rate=1e-2, report_to=[], save_strategy="no", use_cpu=True,
        disable_tqdm=True, logging_strategy="no",
    )
    DistillationTrainer(model=student, teacher=teacher, args=args, train_dataset=rows,
                        loss=loss).train()
    assert lm_metrics(student, blocks, teacher=teacher)["kl_to_teacher"] < 0.7 * before
    assert torch.equal(next_token_labels(ids[:2]), torch.cat(
        [ids[:2, 1:], torch.full((2, 1), -100)], dim=1))
