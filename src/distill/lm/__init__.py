"""Distilling causal language models: data with next-token labels, chunked logits, generation,
sequence-level and on-policy distillation, and the checks a teacher/student pair must pass.

The token-level loss itself is :class:`distill.TokenKDLoss` (``distill.losses.token_kd``).
Names load on first use, so ``import distill`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "HiddenStates": "heads",
    "read_hidden_states": "heads",
    "supports_hidden_states": "heads",
    "causal_blocks": "data",
    "prompt_completions": "data",
    "check_same_tokenizer": "tokenizers",
    "tokenizer_differences": "tokenizers",
    "generate": "generation",
    "teacher_generations": "generation",
    "write_generations": "generation",
    "OnPolicy": "on_policy",
    "lm_metrics": "evaluate",
    "export_gguf": "gguf_export",
    "check_gguf": "gguf_export",
    "prune_depth": "prune",
    "prune_width": "prune",
    "prune_depth_width": "prune",
    "check_cut": "prune",
    "compare_pruning": "prune",
    "skip_importance": "prune",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'distill.lm' has no attribute {name!r}")
    return getattr(importlib.import_module(f"distill.lm.{_EXPORTS[name]}"), name)
