"""What a run measures and writes besides the student: ``[evaluate]`` and ``[export]``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from distill.recipes.values import Count, Identifier, Section, Threads


class EvaluateSpec(Section):
    """Latency settings. ``batch_sizes`` defaults to [1, 64], or [1, 8] for ``causal-lm``
    (64 blocks of a long text is a throughput test, not an answer's latency);
    ``latency_repeats`` is at most: a slow model stops after about 5 s of timed runs."""

    threads: Threads = 1
    batch_sizes: list[Count] = Field(default=[1, 64], min_length=1)
    latency_repeats: Count = 50


class ExportSpec(Section):
    """Files the run writes beside ``student/`` for other runtimes: ``gguf`` (causal LMs of
    the llama family) in each type listed, read back and compared with the student."""

    gguf: list[Literal["f16", "q8_0", "f32"]] = []
    pre_tokenizer: Identifier = "default"
    """llama.cpp's name for the tokenizer's splitting rules (``smollm`` for SmolLM2)."""
