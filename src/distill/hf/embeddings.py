"""Sentence-embedding distillation: a small encoder learns to place sentences where the
teacher does, from unlabeled text, judged by cosine agreement and by shared nearest neighbours.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from distill.evaluate.predict import predict
from distill.losses.base import DistillationLoss

ST_TYPES = {"transformer": "sentence_transformers.models.Transformer",
            "pooling": "sentence_transformers.models.Pooling",
            "normalize": "sentence_transformers.models.Normalize"}


class SentenceEncoder(nn.Module):
    """A Hugging Face encoder with mean pooling over real tokens (as sentence-transformers'
    MiniLM models do), optionally L2-normalised; outputs ``(batch, width)`` embeddings."""

    def __init__(self, encoder: nn.Module, normalize: bool = True):
        super().__init__()
        self.encoder, self.normalize = encoder, normalize

    @property
    def width(self) -> int:
        return int(self.encoder.config.hidden_size)

    @property
    def config(self):
        """The encoder's config: layer lookups and losses see a Hugging Face model."""
        return self.encoder.config

    @property
    def base_model(self) -> nn.Module:
        return self.encoder

    def save_pretrained(self, folder: str | Path, **kwargs: Any) -> None:
        """A sentence-transformers folder: ``SentenceTransformer(folder)`` loads it as it is,
        ``AutoModel.from_pretrained(folder)`` gives the encoder."""
        folder = Path(folder)
        self.encoder.save_pretrained(folder, **kwargs)
        modules = [{"idx": 0, "name": "0", "path": "", "type": ST_TYPES["transformer"]},
                   {"idx": 1, "name": "1", "path": "1_Pooling", "type": ST_TYPES["pooling"]}]
        if self.normalize:
            modules.append({"idx": 2, "name": "2", "path": "2_Normalize",
                            "type": ST_TYPES["normalize"]})
            (folder / "2_Normalize").mkdir(exist_ok=True)
        (folder / "1_Pooling").mkdir(exist_ok=True)
        pooling = {"word_embedding_dimension": self.width, "pooling_mode_cls_token": False,
                   "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
                   "pooling_mode_mean_sqrt_len_tokens": False}
        (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling, indent=2))
        (folder / "modules.json").write_text(json.dumps(modules, indent=2))
        max_length = getattr(self.encoder.config, "max_position_embeddings", 512)
        (folder / "sentence_bert_config.json").write_text(
            json.dumps({"max_seq_length": max_length, "do_lower_case": False}))

    @classmethod
    def from_pretrained(cls, folder: str | Path, trust_code: bool = False) -> SentenceEncoder:
        """Read a folder written by :meth:`save_pretrained` (mean pooling only); its encoder's
        own Python code, if it has any, runs only with ``trust_code=True``."""
        from distill.hf.io import load_model

        folder = Path(folder)
        pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
        if not pooling.get("pooling_mode_mean_tokens"):
            raise ValueError(f"{folder}: only mean-pooling sentence encoders are supported")
        encoder = load_model(folder, "base", trust_remote_code=trust_code)
        return cls(encoder, normalize=(folder / "2_Normalize").is_dir())

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                **kwargs: Any) -> Tensor:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                              **kwargs).last_hidden_state
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp_min(1e-9)
        return F.normalize(pooled, dim=-1) if self.normalize else pooled


class EmbeddingLoss(DistillationLoss):
    """Cosine distance (1 - cos) or MSE between student and teacher sentence embeddings.

    A student narrower than the teacher gets a learned projection to the teacher's width, used
    in training only (the loss owns it; the saved student does not).
    """

    def __init__(self, kind: Literal["cosine", "mse"] = "cosine", *,
                 student_width: int | None = None, teacher_width: int | None = None):
        super().__init__()
        if kind not in ("cosine", "mse"):
            raise ValueError(f"kind must be 'cosine' or 'mse', got {kind!r}")
        self.kind = kind
        self.projection = (nn.Linear(student_width, teacher_width, bias=False)
                           if student_width and teacher_width and student_width != teacher_width
                           else None)

    def forward(self, student_logits: Tensor, teacher_logits: Tensor | None,
                labels: Tensor | None = None) -> Tensor:
        if teacher_logits is None:
            raise ValueError("EmbeddingLoss needs the teacher's embeddings")
        s = student_logits.float()
        if self.projection is not None:
            s = self.projection(s)
        t = teacher_logits.detach().float()
        if s.shape != t.shape:
            raise ValueError(
                f"student embeddings {tuple(s.shape)} and teacher embeddings {tuple(t.shape)} "
                "differ; pass student_width= and teacher_width= to learn a projection"
            )
        if self.kind == "cosine":
            return (1.0 - F.cosine_similarity(s, t, dim=-1)).mean()
        return (s - t).pow(2).sum(-1).mean()


def embed(model: nn.Module, data: Any, batch_size: int = 64) -> Tensor:
    """Embeddings of every sample of ``data`` (a tokenized text dataset), in order."""
    return predict(model, data, batch_size).logits


def embedding_agreement(student: Tensor, teacher: Tensor, k: int = 10) -> dict[str, float]:
    """How alike two embeddings of the same sentences are.

    * ``cosine``: mean cosine between each sentence's two embeddings (needs equal widths);
    * ``neighbour_overlap@k``: the share of each sentence's k nearest neighbours (by cosine,
      within the set) that both embeddings agree on; a width-free retrieval view.
    """
    if len(student) != len(teacher):
        raise ValueError(f"{len(student)} student but {len(teacher)} teacher embeddings")
    if len(student) <= k:
        raise ValueError(f"neighbour overlap@{k} needs more than {k} sentences, got {len(student)}")
    result = {}
    if student.shape[-1] == teacher.shape[-1]:
        result["cosine"] = float(F.cosine_similarity(student, teacher, dim=-1).mean())
    result[f"neighbour_overlap@{k}"] = neighbour_overlap(student, teacher, k)
    return result


def neighbour_overlap(a: Tensor, b: Tensor, k: int) -> float:
    def neighbours(x: Tensor) -> Tensor:
        x = F.normalize(x.float(), dim=-1)
        sims = x @ x.T
        sims.fill_diagonal_(-float("inf"))
        return sims.topk(k, dim=-1).indices

    na, nb = neighbours(a), neighbours(b)
    shared = (na.unsqueeze(-1) == nb.unsqueeze(-2)).any(-1).sum(-1)
    return float(shared.float().mean() / k)


def compare_embeddings(teacher: nn.Module, student: nn.Module, data: Any, *,
                       batch_sizes: Sequence[int] = (1, 64), threads: int = 1,
                       latency_repeats: int = 50, k: int = 10) -> dict[str, Any]:
    """Side by side, as :func:`distill.compare` does for classifiers: each model's size and
    latency, the student's agreement with the teacher, speedup and compression."""
    from distill.evaluate.latency import measure_latency
    from distill.evaluate.size import count_parameters, size_on_disk

    models = {"teacher": teacher, "student": student}
    latency = measure_latency(models, data, batch_sizes=batch_sizes, threads=threads,
                              repeats=latency_repeats)
    result: dict[str, Any] = {}
    for name, model in models.items():
        entry: dict[str, Any] = {"params": count_parameters(model),
                                 "size_bytes": size_on_disk(model), "latency_threads": threads}
        for bs in batch_sizes:
            suffix = "" if bs == 1 else f"_b{bs}"
            entry[f"latency_ms_p50{suffix}"] = latency[name][bs]["p50"]
            entry[f"latency_ms_p95{suffix}"] = latency[name][bs]["p95"]
        result[name] = entry
    result["student"].update(embedding_agreement(embed(student, data), embed(teacher, data), k))
    result["speedup"] = result["teacher"]["latency_ms_p50"] / result["student"]["latency_ms_p50"]
    result["compression"] = result["teacher"]["params"] / result["student"]["params"]
    return result
