"""The budget planner on Fashion-MNIST, and the recommended recipe run to check its numbers.

Budget: a fifth of the teacher's batch-1 latency (``--min-speedup 5``) at 97% retention or
better. The plan is searched once (recipes/fashion-mnist.toml as the base: its teacher, its
training settings, its student as the widest candidate); the recommended recipe is then run by
``distill run``'s own code with the plan's seed and with more seeds, and its accuracy and
speed-up (teacher latency / student latency, measured side by side in each run) are compared
with the plan's.

    python benchmarks/plan_fashion_mnist.py               # plan + 3 seeds of the recipe
    python benchmarks/plan_fashion_mnist.py --seeds 1
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from jobs import machine, mean_std, write_record  # noqa: E402

from distill.plan import plan  # noqa: E402
from distill.plan.output import table, write_plan  # noqa: E402
from distill.recipes import parse_recipe  # noqa: E402
from distill.recipes.loader import load_recipe  # noqa: E402
from distill.recipes.runner import run_recipe  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", type=Path, default=HERE.parent / "recipes" /
                        "fashion-mnist.toml")
    parser.add_argument("--min-speedup", type=float, default=5.0)
    parser.add_argument("--min-retention", type=float, default=0.97)
    parser.add_argument("--seeds", type=int, default=3, help="runs of the recommended recipe")
    parser.add_argument("--work", type=Path, default=Path("runs") / "plan-fashion-mnist")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "plan_fashion_mnist.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)  # training; latency is measured with the recipe's [evaluate]
    return plan_and_reproduce(load_recipe(args.recipe), args.min_speedup, args.min_retention,
                              args.seeds, args.work, args.out)


def plan_and_reproduce(recipe, min_speedup: float, min_retention: float, seeds: int,
                       work: Path, out: Path, **search) -> int:
    """``distill plan`` on ``recipe``, then its recommended recipe run for ``seeds`` seeds;
    ``search``: the planner's own options (widths, blocks, prune, deploy, ...). Resumable: a
    plan made with the same arguments in ``work`` is reused, and so is each seed's finished
    run of its recommendation (the plan takes an hour or more for a transformer)."""
    started = time.perf_counter()
    asked = {"recipe": recipe.model_dump(mode="json"), "min_speedup": min_speedup,
             "min_retention": min_retention, "search": {k: list(v) for k, v in search.items()}}
    folder, asked_file = work / "plan", work / "plan" / "asked.json"
    reuse = (asked_file.is_file() and (folder / "plan.json").is_file()
             and json.loads(asked_file.read_text()) == json.loads(json.dumps(asked)))
    if reuse:
        result = json.loads((folder / "plan.json").read_text())
        plan_seconds = json.loads(asked_file.read_text()).get("seconds")
        print(f"reusing the plan in {folder}", flush=True)
    else:
        for stale in work.glob("run-seed*/metrics.json"):  # runs of another plan's choice
            stale.unlink()
        result = plan(recipe, min_speedup=min_speedup, min_retention=min_retention, **search)
        folder = write_plan(result, recipe, folder)
        plan_seconds = time.perf_counter() - started
        asked_file.write_text(json.dumps({**asked, "seconds": plan_seconds}))
    record = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "machine": machine(1), "plan": result, "plan_seconds": plan_seconds, "runs": []}
    summary = [table(result)]
    if result["recommended"]:
        best = next(r for r in result["finalists"] if r["name"] == result["recommended"])
        base = load_recipe(folder / "recommended.toml").model_dump(mode="json",
                                                                    exclude_none=True,
                                                                    exclude_unset=True)
        for seed in range(seeds):
            base.setdefault("train", {})["seed"] = seed
            t0, run = time.perf_counter(), work / f"run-seed{seed}"
            if reuse and (run / "metrics.json").is_file():
                metrics = json.loads((run / "metrics.json").read_text())
            else:
                metrics = run_recipe(parse_recipe(base), run, force=True)
            record["runs"].append({
                "seed": seed, "seconds": time.perf_counter() - t0,
                "accuracy": metrics["student"]["accuracy"], "retention": metrics["retention"],
                "speedup": metrics["speedup"], "teacher_accuracy":
                metrics["teacher"]["accuracy"], "latency_ms_p50":
                metrics["student"]["latency_ms_p50"],
                "size_bytes": metrics["student"].get("size_bytes"),
                "teacher_size_bytes": metrics["teacher"].get("size_bytes")})
        runs = record["runs"]
        record["reproduction"] = {
            "plan": {k: best[k] for k in ("accuracy", "retention", "speedup",
                                          "latency_ms_p50", "size_bytes")},
            "seed0": runs[0],
            "seeds": {k: mean_std([r[k] for r in runs]) for k in ("accuracy", "retention",
                                                                  "speedup")}}
        s = record["reproduction"]["seeds"]
        summary.append(
            f"recommended {best['name']}: plan accuracy {100 * best['accuracy']:.2f}%, "
            f"speed-up {best['speedup']:.2f}x; recipe seed 0 {100 * runs[0]['accuracy']:.2f}%, "
            f"{runs[0]['speedup']:.2f}x; {len(runs)} seeds retention "
            f"{100 * s['retention']['mean']:.2f} ± {100 * s['retention']['std']:.2f}%, "
            f"speed-up {s['speedup']['mean']:.2f} ± {s['speedup']['std']:.2f}x")
    write_record(record, out, started, "\n".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
