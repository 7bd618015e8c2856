"""Decode speed of the shapes a half-size cut of SmolLM2-135M can take, before training any.

At batch 1 the number of blocks, not only the parameters, sets a decoder's speed, so the cut's
shape decides whether the mini tier meets its speed target: this builds each shape with random
weights (speed does not depend on them) and measures greedy decoding side by side with the
teacher's shape (``distill.lm.speed.generation_speed``: 64-token prompt, 32 new tokens, KV
cache, medians of 5 runs after a warm-up, one thread). Each mixed shape keeps ``blocks`` blocks
and narrows the MLPs to half the teacher's parameters (``distill.lm.check_cut``).

    python benchmarks/mini_cut_speed.py --blocks 13 15 17 19

Set-up: ``make bench-lm`` and ``benchmarks/mini_tier_setup.py`` (the teacher's config).
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from lm_recovery import RECIPE  # noqa: E402


def shapes(config, size: float, blocks: list[int]) -> dict[str, tuple[int, int]]:
    from transformers import AutoModelForCausalLM

    from distill.lm import check_cut

    with torch.device("meta"):
        bare = AutoModelForCausalLM.from_config(config)
    out = {"teacher": (config.num_hidden_layers, config.intermediate_size)}
    for way, kept in [("depth", None), ("width", None)] + [("depth+width", b) for b in blocks]:
        cut = check_cut(bare, size, way, blocks=kept)
        name = way if kept is None else f"depth+width {kept}"
        out[name] = (cut["blocks"], cut["intermediate_size"])
    return out


def main(argv: list[str] | None = None) -> None:
    import tomllib
    from transformers import AutoConfig, AutoModelForCausalLM

    from distill.lm.speed import generation_speed

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, nargs="+", default=[13, 15, 17, 19])
    parser.add_argument("--size", type=float, default=0.5)
    parser.add_argument("--teacher", default=None, help="a folder with the teacher's config "
                        "(default: the mini-tier recipe's)")
    args = parser.parse_args(argv)
    teacher = args.teacher or tomllib.loads(RECIPE.read_text())["teacher"]["model"]
    if not Path(teacher).is_absolute():
        teacher = str(RECIPE.parent / teacher)
    config = AutoConfig.from_pretrained(teacher)
    models = {}
    for name, (blocks, width) in shapes(config, args.size, args.blocks).items():
        shape = copy.deepcopy(config)  # each model keeps its config: one shared would be wrong
        shape.num_hidden_layers, shape.intermediate_size = blocks, width
        torch.manual_seed(0)
        models[name] = AutoModelForCausalLM.from_config(shape).eval()
    ids = torch.randint(0, config.vocab_size, (1, 64), generator=torch.Generator().manual_seed(0))
    found = generation_speed(models, ids, prompt_lengths=(64,), threads=(1,), new_tokens=32,
                             repeats=5)
    base = found["teacher"]["p64_t1"]["decode_tokens_per_s"]
    print("| shape | blocks | MLP width | parameters | decode tokens/s | × teacher |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, model in models.items():
        speed = found[name]["p64_t1"]["decode_tokens_per_s"]
        print(f"| {name} | {model.config.num_hidden_layers} | {model.config.intermediate_size} "
              f"| {sum(p.numel() for p in model.parameters()):,} | {speed:.1f} | "
              f"{speed / base:.2f}× |")


if __name__ == "__main__":
    main()
