"""Text tokenized once into tensors: a dataset the engine, the evaluators and caches all read."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from distill.data.base import NO_LABEL, DatasetInfo, balanced_indices


class TokenizedText(Dataset):
    """Samples are dicts of the tokenizer's tensors (``input_ids``, ``attention_mask``, …) and,
    for labeled text, ``labels``; Hugging Face models take them as keyword arguments.

    Text is stored padded to one length, but each batch is cut to the columns its own
    attention mask uses (left or right padding alike): short snippets padded to 64 tokens would
    otherwise cost the whole 64 in every layer. Turn ``trim_padding`` off when per-token targets
    must keep the stored length (per-token teacher outputs cached at full length).
    """

    def __init__(
        self,
        encodings: dict[str, Tensor],
        labels: Tensor | None,
        info: DatasetInfo,
        trim_padding: bool = True,
    ):
        sizes = {k: len(v) for k, v in encodings.items()}
        if labels is not None:
            sizes["labels"] = len(labels)
        if len(set(sizes.values())) > 1:
            raise ValueError(f"tokenized fields differ in length: {sizes}")
        if "input_ids" not in encodings:
            raise ValueError(f"encodings need 'input_ids'; got {sorted(encodings)}")
        self.encodings, self.labels, self.info = encodings, labels, info
        self.trim_padding = trim_padding

    @classmethod
    def from_texts(
        cls,
        texts: Sequence[str],
        tokenizer: Any,
        labels: Sequence[int] | Tensor | None = None,
        *,
        max_length: int = 64,
        num_classes: int | None = None,
        name: str = "text",
        trim_padding: bool = True,
    ) -> TokenizedText:
        """Tokenize ``texts`` padded/truncated to ``max_length`` tokens."""
        texts = list(texts)
        if not texts:
            raise ValueError(f"{name}: no texts to tokenize")
        bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
        if bad is not None:
            raise TypeError(f"{name}: text {bad} is a {type(texts[bad]).__name__}, not a str")
        encoded = tokenizer(texts, padding="max_length", truncation=True, max_length=max_length,
                            return_tensors="pt")
        label_tensor = None
        if labels is not None:
            label_tensor = torch.as_tensor(labels, dtype=torch.long)
            if num_classes is None:
                num_classes = int(label_tensor.max()) + 1
        info = DatasetInfo(name, (max_length,), num_classes or 0)
        return cls(dict(encoded), label_tensor, info, trim_padding)

    def __len__(self) -> int:
        return len(self.encodings["input_ids"])

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        sample = {k: v[index] for k, v in self.encodings.items()}
        if self.labels is not None:
            sample["labels"] = self.labels[index]
        return sample

    def collate(self, samples: list[dict[str, Tensor]]) -> dict[str, Tensor]:
        """Stack samples, dropping the padding columns that no sample in the batch uses."""
        batch = {k: torch.stack([s[k] for s in samples]) for k in samples[0]}
        mask = batch.get("attention_mask")
        if not self.trim_padding or mask is None or mask.dim() != 2:
            return batch
        used = mask.any(dim=0).nonzero().flatten()
        if len(used) == 0 or (used[0] == 0 and used[-1] == mask.shape[1] - 1):
            return batch
        first, last = int(used[0]), int(used[-1]) + 1
        return {k: v[:, first:last] if v.dim() == 2 and v.shape == mask.shape else v
                for k, v in batch.items()}

    def untrimmed(self) -> TokenizedText:
        """The same text, every batch at the stored length (what per-position cached teacher
        outputs need)."""
        return TokenizedText(self.encodings, self.labels, self.info, trim_padding=False)

    def subset(self, indices: Tensor | Sequence[int], name: str | None = None) -> TokenizedText:
        index = torch.as_tensor(indices, dtype=torch.long)
        labels = self.labels[index] if self.labels is not None else None
        info = self.info if name is None else dataclasses.replace(self.info, name=name)
        return TokenizedText({k: v[index] for k, v in self.encodings.items()}, labels, info,
                             self.trim_padding)

    def labeled(self) -> TokenizedText:
        """Only the samples that carry a hard label."""
        if self.labels is None:
            raise ValueError(f"{self.info.name}: the text carries no labels")
        return self.subset((self.labels != NO_LABEL).nonzero().flatten())

    def with_scarce_labels(self, num_labeled: int, seed: int = 0) -> TokenizedText:
        """Keep ``num_labeled`` labels (balanced across classes); the rest become unlabeled."""
        if self.labels is None:
            raise ValueError(f"{self.info.name}: the text carries no labels")
        if not 0 <= num_labeled <= len(self):
            raise ValueError(f"num_labeled must be in [0, {len(self)}], got {num_labeled}")
        keep = balanced_indices(self.labels, num_labeled, seed)
        labels = torch.full_like(self.labels, NO_LABEL)
        labels[keep] = self.labels[keep]
        return TokenizedText(self.encodings, labels, self.info, self.trim_padding)

    def unlabeled(self) -> TokenizedText:
        """The same text without labels: a transfer set for the teacher's targets alone."""
        return TokenizedText(self.encodings, None, self.info, self.trim_padding)


def load_text_dataset(name: str, split: str, tokenizer: Any, max_length: int = 64,
                      path: Any = None) -> TokenizedText:
    """A built-in text dataset (``distill.data.TEXT_DATASETS``) read by ``tokenizer``."""
    from distill.data import TEXT_DATASETS

    if name not in TEXT_DATASETS:
        raise ValueError(f"unknown text dataset {name!r}; built-in: {sorted(TEXT_DATASETS)}")
    texts, labels = TEXT_DATASETS[name](split, **({"path": path} if path is not None else {}))
    return TokenizedText.from_texts(texts, tokenizer, labels, max_length=max_length,
                                    name=f"{name}-{split}")


def at_stored_length(data: Any) -> Any:
    """``data`` with every batch at its stored length, if it is text that would cut batches
    to their longest row; anything else as it is. Per-position teacher outputs are cached at
    the stored length, so both the pass that writes them and the training that reads them
    need the text at that length."""
    if isinstance(data, TokenizedText) and data.trim_padding:
        return data.untrimmed()
    return data
