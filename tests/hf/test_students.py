from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import distill
from distill.hf import block_names, keep_layers, layer_name, save_pretrained, scratch_student
from distill.hf.layers import spread_layers


def test_keep_layers_copies_every_other_block_with_its_weights(make_bert):
    teacher = make_bert(layers=4)
    student = keep_layers(teacher)
    assert type(student) is type(teacher)
    assert student.config.num_hidden_layers == 2
    assert block_names(student) == ["bert.encoder.layer.0", "bert.encoder.layer.1"]
    t, s = teacher.state_dict(), student.state_dict()
    for kept, source in ((0, 0), (1, 2)):
        for name, value in s.items():
            prefix = f"bert.encoder.layer.{kept}."
            if name.startswith(prefix):
                assert torch.equal(value, t[f"bert.encoder.layer.{source}." + name[len(prefix):]])
    for name in ("bert.embeddings.word_embeddings.weight", "classifier.weight",
                 "bert.pooler.dense.weight"):
        assert torch.equal(s[name], t[name])
    # the student's parameters are its own, not views of the teacher's
    student.classifier.weight.data.add_(1.0)
    assert not torch.equal(student.classifier.weight, teacher.classifier.weight)


def test_keep_layers_on_a_decoder_and_with_chosen_layers(make_llama):
    teacher = make_llama(layers=4)
    student = keep_layers(teacher, layers=[1, 3])
    assert student.config.num_hidden_layers == 2
    t, s = teacher.state_dict(), student.state_dict()
    for kept, source in ((0, 1), (1, 3)):
        assert torch.equal(s[f"model.layers.{kept}.mlp.up_proj.weight"],
                           t[f"model.layers.{source}.mlp.up_proj.weight"])
    ids = torch.randint(0, 32, (2, 6))
    assert student(ids).logits.shape == (2, 6, 32)


def test_a_student_with_all_blocks_computes_what_the_teacher_does(make_bert):
    teacher = make_bert(layers=3)
    student = keep_layers(teacher, layers=[0, 1, 2]).eval()
    ids = torch.randint(4, 32, (2, 7))
    torch.testing.assert_close(student(ids).logits, teacher(ids).logits)


@pytest.mark.parametrize("layers, message", [([], "empty"), ([0, 9], "out of range"),
                                             ([1, 1], "twice")])
def test_keep_layers_refuses_bad_layer_lists(make_bert, layers, message):
    with pytest.raises(ValueError, match=message):
        keep_layers(make_bert(layers=4), layers=layers)


def test_unsupported_architectures_get_the_list_of_supported_ones():
    transformers = pytest.importorskip("transformers")
    gpt2 = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=2, n_embd=8, n_head=2,
                                                                vocab_size=16))
    with pytest.raises(ValueError, match="'gpt2' is not supported.*bert.*llama"):
        keep_layers(gpt2)
    with pytest.raises(ValueError, match="not supported"):
        layer_name(torch.nn.Linear(2, 2), 0)


def test_scratch_student_is_narrower_and_checks_its_config(make_bert):
    teacher = make_bert(layers=4, hidden=16)
    student = scratch_student(teacher, num_hidden_layers=2, hidden_size=8, intermediate_size=16)
    assert student.config.hidden_size == 8 and student.config.num_hidden_layers == 2
    assert student.num_parameters() < teacher.num_parameters()
    with pytest.raises(ValueError, match="not divisible"):
        scratch_student(teacher, hidden_size=9)
    with pytest.raises(ValueError, match="no field 'hiden_size'"):
        scratch_student(teacher, hiden_size=8)


def test_spread_layers_matches_distilbert_every_other():
    assert spread_layers(3, 6) == {0: 1, 1: 3, 2: 5}
    assert spread_layers(2, 2) == {0: 0, 1: 1}
    with pytest.raises(ValueError, match="cannot map"):
        spread_layers(4, 2)


def test_saved_student_loads_with_transformers_alone(make_bert, tokenizer, tmp_path):
    student = keep_layers(make_bert(layers=4))
    folder = distill.save(student, tmp_path / "student", metadata={"accuracy": 0.5})
    assert (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()
    save_pretrained(student, tmp_path / "with-tokenizer", tokenizer=tokenizer)
    ids = torch.randint(4, 32, (1, 5))
    expected = student.eval()(ids).logits
    where = tmp_path / "with-tokenizer"
    script = (
        "import sys, torch, transformers as t\n"
        f"m = t.AutoModelForSequenceClassification.from_pretrained(r'{where}')\n"
        f"tok = t.AutoTokenizer.from_pretrained(r'{where}')\n"
        f"ids = torch.tensor({ids.tolist()})\n"
        "print(m.eval()(ids).logits.tolist(), tok('good film')['input_ids'])\n"
        "assert not any(n == 'distill' or n.startswith('distill.') for n in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True)
    logits, token_ids = out.stdout.strip().rsplit("] [", 1)
    torch.testing.assert_close(torch.tensor(eval(logits + "]")), expected, rtol=1e-4, atol=1e-5)
    assert token_ids.rstrip("]") != ""
    reloaded = distill.load(folder)
    torch.testing.assert_close(reloaded(ids).logits, expected, rtol=1e-4, atol=1e-5)


def test_save_pretrained_refuses_plain_modules(tmp_path):
    with pytest.raises(TypeError, match="not a Hugging Face model"):
        save_pretrained(torch.nn.Linear(2, 2), tmp_path / "x")
