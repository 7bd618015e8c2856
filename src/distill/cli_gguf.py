"""``distill gguf``: a saved causal-LM student as one GGUF file for llama.cpp, checked by
reading it back with transformers."""

from __future__ import annotations

import argparse
from pathlib import Path

from distill.cli_data import TRUST_HELP


def add_gguf_parser(sub: argparse._SubParsersAction) -> None:
    gguf = sub.add_parser(
        "gguf",
        help="write a saved llama-family student as a GGUF file (llama.cpp), and check it",
        description="Write MODEL (a save_pretrained causal LM folder with its tokenizer, e.g. "
        "runs/mini/student) to OUT in f16, q8_0 or f32, then load OUT with transformers' own "
        "GGUF reader and compare its logits with the folder's on a few tokens.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  distill gguf runs/mini/student mini-q8_0.gguf --type q8_0 "
        "--pre-tokenizer smollm",
    )
    gguf.add_argument("model", help="model folder or hub id")
    gguf.add_argument("out", type=Path, help="the .gguf file to write")
    gguf.add_argument("--type", choices=("f16", "q8_0", "f32"), default="f16",
                      help="weight type (default f16); norms stay f32")
    gguf.add_argument("--pre-tokenizer", default="default",
                      help="llama.cpp's name for the tokenizer's splitting rules ('smollm' "
                      "for SmolLM2; default 'default')")
    gguf.add_argument("--no-check", action="store_true", help="skip reading the file back")
    gguf.add_argument("--trust-code", action="store_true", help=TRUST_HELP)


def cmd_gguf(args: argparse.Namespace) -> int:
    import torch

    from distill.hf import load_model, load_tokenizer
    from distill.lm.gguf_export import check_gguf, export_gguf

    if args.out.suffix != ".gguf":
        raise ValueError(f"{args.out}: name the output file .gguf")
    model = load_model(args.model, task="causal-lm", trust_remote_code=args.trust_code).eval()
    tokenizer = load_tokenizer(args.model, trust_remote_code=args.trust_code)
    path = export_gguf(model, tokenizer, args.out, dtype=args.type,
                       pre_tokenizer=args.pre_tokenizer)
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB, {args.type})")
    if args.no_check:
        return 0
    sample = "The quick brown fox jumps over the lazy dog. To be, or not to be."
    ids = torch.tensor([tokenizer(sample)["input_ids"][:32]])
    check = check_gguf(path, model, ids)
    print(f"read back by transformers: perplexity {check.perplexity:.3f} against the model's "
          f"{check.model_perplexity:.3f} on a sample sentence ({check.perplexity_change:+.2%}); "
          f"top-1 agreement {check.top1_agreement:.2%}, largest logit difference "
          f"{check.max_abs_diff:.4f} (the logits' spread: {check.logit_std:.3f})")
    return 0
