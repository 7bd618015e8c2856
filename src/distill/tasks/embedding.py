"""Sentence embeddings: the student learns the teacher's vectors; cosine and neighbour overlap."""

from __future__ import annotations

from typing import Any

from torch import nn

from distill.losses.base import DistillationLoss
from distill.tasks.base import Task


class SentenceEmbedding(Task):
    name = "sentence-embedding"
    headline = "cosine"

    def evaluate(self, model: nn.Module, data: Any, *, teacher: Any = None, batch_size: int = 512,
                 device: str = "cpu", memo: dict[str, Any] | None = None) -> dict[str, float]:
        from distill.hf.embeddings import embed, embedding_agreement

        if teacher is None:
            return {}  # an embedding has no label to be scored against: only the teacher's
        memo = {} if memo is None else memo
        if "teacher_embeddings" not in memo:
            memo["teacher_embeddings"] = embed(teacher, data, batch_size)
        return embedding_agreement(embed(model, data, batch_size), memo["teacher_embeddings"])

    def default_loss(self, student: nn.Module | None = None,
                     teacher: nn.Module | None = None) -> DistillationLoss:
        from distill.hf.embeddings import EmbeddingLoss

        return EmbeddingLoss("cosine", student_width=getattr(student, "width", None),
                             teacher_width=getattr(teacher, "width", None))


TASK = SentenceEmbedding()
