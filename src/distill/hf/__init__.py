"""Hugging Face models as teachers and students (needs ``pip install 'distill[hf]'``).

* :func:`load_model` / :func:`load_tokenizer`: a hub id or a local folder;
* :func:`keep_layers`: a student from a subset of the teacher's blocks, weights copied
  (DistilBERT's every-other-layer start); :func:`scratch_student`: a narrower one;
* :func:`save_pretrained`: a folder that ``AutoModel*.from_pretrained`` opens without distill;
* :class:`TokenizedText`: text as a dataset for the engine;
* :class:`SentenceEncoder`, :class:`EmbeddingLoss`, :func:`embedding_agreement`: sentence
  embeddings;
* ``distill.hf.trainer.DistillationTrainer``: the same losses inside ``transformers.Trainer``
  (imported on its own, since importing ``Trainer`` is slow).
"""

from distill.hf.embeddings import (
    EmbeddingLoss,
    SentenceEncoder,
    compare_embeddings,
    embed,
    embedding_agreement,
)
from distill.hf.io import is_hf_model, load_model, load_tokenizer, save_pretrained
from distill.hf.layers import block_names, layer_name, spread_layers
from distill.hf.students import keep_layers, scratch_student
from distill.hf.text import TokenizedText

__all__ = [
    "EmbeddingLoss",
    "SentenceEncoder",
    "TokenizedText",
    "block_names",
    "compare_embeddings",
    "embed",
    "embedding_agreement",
    "is_hf_model",
    "keep_layers",
    "layer_name",
    "load_model",
    "load_tokenizer",
    "save_pretrained",
    "scratch_student",
    "spread_layers",
]
