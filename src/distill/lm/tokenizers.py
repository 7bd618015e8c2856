"""Teacher and student must read text the same way: token ``i`` has to mean the same string."""

from __future__ import annotations

from typing import Any

SPECIAL = ("bos_token", "eos_token", "pad_token", "unk_token")


def tokenizer_differences(teacher: Any, student: Any, examples: int = 3) -> list[str]:
    """What differs between two tokenizers, in words; empty when they are interchangeable."""
    out = []
    if len(teacher) != len(student):
        out.append(f"vocabulary size: teacher {len(teacher)}, student {len(student)}")
    for name in SPECIAL:
        t = (getattr(teacher, name, None), getattr(teacher, f"{name}_id", None))
        s = (getattr(student, name, None), getattr(student, f"{name}_id", None))
        if t != s:
            out.append(f"{name}: teacher {t[0]!r} (id {t[1]}), student {s[0]!r} (id {s[1]})")
    t_vocab, s_vocab = teacher.get_vocab(), student.get_vocab()
    moved = [tok for tok, i in t_vocab.items() if tok in s_vocab and s_vocab[tok] != i]
    missing = [tok for tok in t_vocab if tok not in s_vocab]
    if moved:
        shown = ", ".join(f"{tok!r}: {t_vocab[tok]} vs {s_vocab[tok]}" for tok in moved[:examples])
        out.append(f"{len(moved)} tokens have other ids (e.g. {shown})")
    if missing:
        shown = ", ".join(repr(tok) for tok in missing[:examples])
        out.append(f"{len(missing)} teacher tokens are not in the student's vocabulary "
                   f"(e.g. {shown})")
    return out


def _token_ids(model: Any) -> dict[str, Any]:
    config = getattr(model, "config", None)
    ids = {f"{name}_id": getattr(config, f"{name}_id", None) for name in SPECIAL}
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    ids["vocabulary size"] = (int(head.weight.shape[0]) if head is not None
                              else getattr(config, "vocab_size", None))
    return ids


def model_differences(teacher: Any, student: Any) -> list[str]:
    """What two models' configurations say differently about their tokens (vocabulary size,
    special-token ids); settings only one of them records are not compared."""
    t, s = _token_ids(teacher), _token_ids(student)
    return [f"{k}: teacher {t[k]}, student {s[k]}" for k in t
            if t[k] is not None and s[k] is not None and t[k] != s[k]]


def check_same_tokenizer(teacher: Any, student: Any) -> None:
    """Refuse a pair whose token ids mean different things, saying what differs."""
    differences = tokenizer_differences(teacher, student)
    if differences:
        raise ValueError(
            "teacher and student must share one tokenizer for token-level distillation; "
            + "; ".join(differences)
        )
