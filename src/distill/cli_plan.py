"""``distill plan``: the student, its cuts and its deployment that meet a latency budget."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_plan_parser(sub: argparse._SubParsersAction) -> None:
    pl = sub.add_parser(
        "plan",
        help="find the student and deployment that meet a latency budget (Pareto frontier)",
        description="Screen the recipe's student at several widths (a Hugging Face text "
        "student: blocks kept, MLP neurons cut), each deployed in PyTorch "
        "or ONNX Runtime, fp32 or int8, by batch-1 latency beside the teacher (untrained: "
        "weights do not change speed); distil the survivors by successive halving; measure the "
        "finalists side by side; print the frontier and write PLAN/plan.json, report.html and "
        "recommended.toml, a recipe that distill run reproduces.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  distill plan recipes/fashion-mnist.toml --min-speedup 5 "
        "--min-retention 0.97\n  distill run plans/fashion-mnist/recommended.toml",
    )
    pl.add_argument("recipe", type=Path, help="the base recipe (.toml)")
    budget = pl.add_mutually_exclusive_group(required=True)
    budget.add_argument("--max-latency-ms", type=float, help="batch-1 latency budget")
    budget.add_argument("--min-speedup", type=float,
                        help="budget as a speed-up over the teacher (5 = a fifth of its latency)")
    pl.add_argument("--max-size-mb", type=float, help="size budget (saved file)")
    pl.add_argument("--min-retention", type=float, help="e.g. 0.97: keep 97%% of the accuracy")
    pl.add_argument("--widths", type=float, nargs="+", help="student widths to try "
                    "(default 0.25 0.5 0.75 1)")
    pl.add_argument("--deploy", nargs="+", help="deployments to try (default: all of "
                    "'pytorch fp32', 'pytorch int8', 'onnx fp32', 'onnx int8'; text students "
                    "also 'onnx int8, trimmed vocabulary')")
    pl.add_argument("--prune", type=float, nargs="+", help="structured pruning ratios to try "
                    "on each width (text students: share of MLP neurons cut), recovered by "
                    "distillation (default 0 0.5; 0 = off)")
    pl.add_argument("--blocks", type=int, nargs="+", help="text students (hf-layers): how "
                    "many of the teacher's blocks to keep (default: a half, a third, a sixth)")
    pl.add_argument("--block-choice", nargs="+", choices=["every-other", "first",
                                                           "importance"],
                    help="text students: which blocks to keep (default every-other: evenly "
                    "from the first; importance: the blocks that change their input most)")
    pl.add_argument("--heads", type=float, nargs="+", help="text students of the llama "
                    "family: share of attention heads cut (default 0)")
    pl.add_argument("--finalists", type=int, default=2, help="widths trained in full")
    pl.add_argument("--out", type=Path, help="plan folder (default: plans/<recipe name>)")
    pl.add_argument("--no-progress", action="store_true", help="hide progress bars")


def cmd_plan(args: argparse.Namespace) -> int:
    from distill.cli import _log_steps
    from distill.plan import plan
    from distill.plan.output import table, write_plan
    from distill.recipes.loader import load_recipe

    _log_steps()
    recipe = load_recipe(args.recipe)
    result = plan(recipe, max_latency_ms=args.max_latency_ms, min_speedup=args.min_speedup,
                  max_size_mb=args.max_size_mb, min_retention=args.min_retention,
                  widths=tuple(args.widths) if args.widths else None,
                  blocks=tuple(args.blocks) if args.blocks else None,
                  heads=tuple(args.heads) if args.heads else None,
                  block_choice=tuple(args.block_choice) if args.block_choice else None,
                  deploy=tuple(args.deploy) if args.deploy else None,
                  prune=tuple(args.prune) if args.prune else None,
                  finalists=args.finalists, progress=False if args.no_progress else None)
    out = write_plan(result, recipe, args.out or Path("plans") / (recipe.name
                                                                   or args.recipe.stem))
    print(table(result))
    budget = result["budget"]["max_latency_ms"]
    if result["recommended"]:
        print(f"recommended: {result['recommended']} (budget {budget:.3f} ms); run it with: "
              f"distill run {out / 'recommended.toml'}")
    else:
        from distill.plan.frontier import closest

        print(f"no plan met the budget ({budget:.3f} ms); the closest:")
        for name, missed in closest(result):
            print(f"  {name}: {'; '.join(missed) or 'within the limits, not measured'}")
        print(f"see {out / 'report.html'}")
    print(f"wrote {out}/ (plan.json, report.html"
          + (", recommended.toml)" if result["recommended"] else ")"))
    return 0 if result["recommended"] else 3
