"""The ``distill`` command: a thin layer over the Python API (parse, call, print)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from distill.cli_data import DATA_CHOICES, TRUST_HELP, data_arguments, dataset, mismatches
from distill.cli_gguf import add_gguf_parser, cmd_gguf
from distill.cli_plan import add_plan_parser, cmd_plan

__all__ = ["DATA_CHOICES", "main"]

EPILOG = """examples:
  distill run recipes/fashion-mnist.toml --out runs/fmnist
  distill eval runs/fmnist/student --data fashion-mnist --json
  distill predict runs/fmnist/student shoe.png shirt.png
  distill cache TEACHER_FOLDER --data fashion-mnist --out caches/fmnist --top-k 5
  distill compare runs/fmnist runs/fmnist-pruned
  distill generate runs/mini/student "To be, or not to be" --max-new-tokens 40
  distill run --help

A recipe is a TOML file with [data], [teacher], [student], [loss], [train], [baseline] and
[evaluate] tables; see recipes/ and the README for annotated examples.
"""




def _parser() -> argparse.ArgumentParser:
    from distill import __version__

    parser = argparse.ArgumentParser(
        prog="distill",
        description="Make large models small: distil a teacher into a student, and measure "
        "what it bought (accuracy kept, speed, size).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"distill {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run a TOML recipe: train/reuse the teacher, distil the student, write a report",
        description="Run a recipe and write a run folder: student/ (safetensors + config.json), "
        "metrics.json, report.md, report.html and plots/. The teacher a recipe trains is cached "
        "(in $DISTILL_CACHE or ~/.cache/distill) and reused by later runs with the same "
        "settings.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  distill run recipes/fashion-mnist.toml --out runs/fmnist --force",
    )
    run.add_argument("recipe", type=Path, help="path to the recipe (.toml)")
    run.add_argument("--out", type=Path, help="run folder (default: runs/<recipe name>)")
    run.add_argument("--force", action="store_true", help="replace a run already in --out")
    run.add_argument("--resume", action="store_true",
                     help="continue a run of this recipe in --out: its finished pipeline "
                     "stages, and the student's training from its last complete epoch")
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")
    run.add_argument("--quiet", action="store_true", help="print only the final summary")
    run.add_argument("--check", action="store_true", help="only validate the recipe, run nothing")

    init = sub.add_parser(
        "init",
        help="write a commented starter recipe for your data (and teacher)",
        description="Look at DATA (an image folder, a CSV/JSONL/Parquet table, .npz, a text "
        "folder or corpus, or a built-in dataset's name) and write a recipe that runs as "
        "written, every choice explained in a comment. Nothing is trained.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  distill init images/train --out recipes/mine.toml\n"
        "  distill init reviews.csv --teacher my-finetuned-bert\n"
        "  distill init images/train --teacher resnet",
    )
    init.add_argument("data", help="the training data (a path, or a built-in dataset's name)")
    init.add_argument("--teacher", help="a saved model folder, a Hugging Face folder or hub id, "
                      "or a vision family (resnet, mobilenet_v2, ...); default: one the recipe "
                      "trains")
    init.add_argument("--out", type=Path, default=Path("recipe.toml"),
                      help="where to write the recipe (default: recipe.toml)")
    init.add_argument("--name", help="the run's name (default: from the data's)")
    init.add_argument("--force", action="store_true", help="replace an existing --out file")

    ev = sub.add_parser(
        "eval",
        help="evaluate a saved model: accuracy, calibration, size, CPU latency",
        description="Evaluate a model saved by distill (a folder with config.json and "
        "model.safetensors) on a built-in dataset or a path. An image folder is prepared as the "
        "model folder records (size, channels, mean, std) unless --option says otherwise. With "
        "--teacher, also agreement and KL to the teacher, and retention / speedup / "
        "compression. A teacher (or model) near chance on the data is a WARNING on stderr.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  distill eval runs/fmnist/student --data fashion-mnist --json",
    )
    ev.add_argument("model", type=Path, help="saved model folder")
    data_arguments(ev, "evaluate on")
    ev.add_argument("--max-length", type=int, default=64, help="text: tokens per sample")
    ev.add_argument("--split", default="test", choices=["train", "test"])
    ev.add_argument("--teacher", type=Path, help="saved teacher folder to compare against")
    ev.add_argument("--threads", type=int, default=1, help="torch threads for latency (default 1)")
    ev.add_argument("--repeats", type=int, default=50, help="timed runs per batch size")
    ev.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ev.add_argument("--trust-code", action="store_true", help=TRUST_HELP)

    pr = sub.add_parser(
        "predict",
        help="the class a saved model gives each image file, and its probability",
        description="Prepare each image as the model folder records (size, channels, mean, "
        "std: saved by distill run) and print its top class (by name when the folder records "
        "class_names) and probability. A folder that records nothing needs --size, --channels, "
        "--mean and --std; given with a record, they replace it (with a warning).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  distill predict runs/fmnist/student shoe.png shirt.png",
    )
    pr.add_argument("model", type=Path, help="saved model folder (or exported ONNX folder)")
    pr.add_argument("images", nargs="+", type=Path, help="image files")
    pr.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="resize to H x W")
    pr.add_argument("--channels", choices=["L", "RGB"], help="L: grey; RGB: colour")
    pr.add_argument("--mean", type=float, nargs="+", help="per channel, of pixels in [0, 1]")
    pr.add_argument("--std", type=float, nargs="+", help="per channel, of pixels in [0, 1]")
    pr.add_argument("--trust-code", action="store_true", help=TRUST_HELP)

    cache = sub.add_parser(
        "cache",
        help="run a teacher once over a dataset and store its outputs (dense, top-k or sampled)",
        description="Store a saved teacher's outputs on every sample of a dataset, keyed by "
        "sample index: sharded .npy files with sha256 checksums and a manifest recording a "
        "fingerprint of teacher, data and settings. An interrupted run resumes where it "
        "stopped; a cache built from another teacher or other data is refused. Train from it "
        "with distill.CachedTeacher(path) in Python, or outputs = \"cached\" in a recipe.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  distill cache runs/fmnist-teacher --data fashion-mnist "
        "--out caches/fmnist-top5 --top-k 5",
    )
    cache.add_argument("model", type=Path, help="saved teacher folder")
    data_arguments(cache, "run the teacher over")
    cache.add_argument("--max-length", type=int, default=64, help="text: tokens per sample")
    cache.add_argument("--split", default="train", choices=["train", "test"])
    cache.add_argument("--out", type=Path, required=True, help="cache folder")
    cache.add_argument("--top-k", type=int, help="keep the k largest logits (default: all)")
    cache.add_argument("--samples", type=int,
                       help="keep n tokens drawn from the teacher per position: an unbiased "
                       "estimate of its distribution at 2n + 2 bytes (language models)")
    cache.add_argument("--temperature", type=float, default=1.0,
                       help="with --samples: the temperature the tokens are drawn at")
    cache.add_argument("--seed", type=int, default=0, help="with --samples: the draws' seed")
    cache.add_argument("--sampler", choices=["stratified", "multinomial"], default="stratified",
                       help="with --samples: one draw per n-th of the teacher's cumulative "
                       "distribution (less noisy), or independent draws")
    cache.add_argument("--dtype", default="float16", choices=["float16", "float32"])
    cache.add_argument("--batch-size", type=int, default=None,
                       help="rows per teacher batch (default: as many as keep one batch's "
                            "outputs under 512 MiB, at most 256)")
    cache.add_argument("--overwrite", action="store_true",
                       help="rebuild a cache built from another teacher, data or settings")
    cache.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    cache.add_argument("--trust-code", action="store_true", help=TRUST_HELP)

    cmp = sub.add_parser(
        "compare",
        help="one table across finished runs (accuracy, retention, speedup, size)",
        description="Read the metrics.json of each run folder and print one markdown table: "
        "teacher, student and baseline accuracy, retention, speedup, compression, the "
        "student's size and batch-1 latency.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  distill compare runs/fmnist runs/fmnist-pruned",
    )
    cmp.add_argument("runs", nargs="+", type=Path, help="run folders written by distill run")

    add_plan_parser(sub)

    rep = sub.add_parser(
        "report",
        help="redraw report.html of finished runs from their metrics.json",
        description="Write RUN/report.html again from RUN/metrics.json: one self-contained page "
        "(summary, accuracy against latency, training curves, per-class accuracy, confusion "
        "difference, calibration, inherited errors, the recipe).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  distill report runs/fmnist && xdg-open runs/fmnist/report.html",
    )
    rep.add_argument("runs", nargs="+", type=Path, help="run folders written by distill run")

    gen = sub.add_parser(
        "generate",
        help="continue a prompt with a saved causal language model (a quick look at a student)",
        description="Load a causal LM folder (save_pretrained layout, with its tokenizer) or a "
        "hub id, and print its continuation of PROMPT. Greedy unless --temperature > 0. With "
        "--teacher, the teacher's continuation is printed beside it.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  distill generate runs/mini/student \"ROMEO:\" --max-new-tokens 40 "
        "--teacher caches/smollm2",
    )
    gen.add_argument("model", help="model folder or hub id")
    gen.add_argument("prompt", help="the text to continue")
    gen.add_argument("--max-new-tokens", type=int, default=50)
    gen.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    gen.add_argument("--top-p", type=float, help="nucleus sampling (with --temperature > 0)")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    gen.add_argument("--teacher", help="a second model to continue the same prompt")
    gen.add_argument("--trust-code", action="store_true", help=TRUST_HELP)
    add_gguf_parser(sub)
    return parser


def _log_steps() -> None:
    """distill's own steps on stderr; other libraries (the ONNX exporter's optimizer passes,
    ONNX Runtime's quantizer) only when they warn."""
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    logging.getLogger("distill").setLevel(logging.INFO)


def _cmd_run(args: argparse.Namespace) -> int:

    from distill.recipes.loader import load_recipe
    from distill.recipes.runner import run_recipe
    from distill.report.formatting import retention_text
    from distill.report.markdown import summary_table

    if not args.quiet:
        _log_steps()
    recipe = load_recipe(args.recipe)
    if args.check:
        from distill.recipes.check import check_recipe

        found = check_recipe(recipe, str(args.recipe))
        print(f"{args.recipe}: valid; data: {found.summary()}")
        return 0
    out = args.out or Path("runs") / (recipe.name or args.recipe.stem)
    metrics = run_recipe(
        recipe, out, recipe_text=args.recipe.read_text(encoding="utf-8"), force=args.force,
        resume=args.resume,
        progress=False if args.no_progress or args.quiet else None,
    )
    if not metrics:  # another rank of a torchrun launch: rank 0 reports
        return 0
    _warn(metrics)
    print(summary_table(metrics))
    parts = [f"retention {retention_text(metrics)}" if metrics.get("retention") else ""]
    if metrics.get("speedup"):
        threads = metrics.get("student", {}).get("latency_threads", "?")
        parts.append(f"speedup {metrics['speedup']:.2f}x (batch 1, {threads} thread(s) on "
                     f"{metrics.get('environment', {}).get('cpu', 'this CPU')})")
    if metrics.get("compression"):
        parts.append(f"compression {metrics['compression']:.1f}x")
    print(", ".join(p for p in parts if p))
    from distill.report.formatting import findings

    for line in findings(metrics):  # each difference with its interval, noise said as noise
        print(line)
    from distill.report.formatting import plain_summary

    summary = plain_summary(metrics)
    if summary:
        print(summary)
    if metrics.get("teacher_path"):
        print(f"teacher: {metrics['teacher_path']}")
    # the last line says where the report is
    print(f"wrote {out}/ (student/, metrics.json, report.md, report.html, plots/); "
          f"open {out / 'report.html'} for the whole report")
    return 0


def _cmd_init(args: argparse.Namespace) -> int:
    from distill import atomic
    from distill.recipes.loader import load_recipe
    from distill.recipes.starter import starter_recipe

    if args.out.exists() and not args.force:
        raise FileExistsError(f"{args.out} exists; choose another --out or pass --force")
    starter = starter_recipe(args.data, teacher=args.teacher, out=args.out, name=args.name)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(args.out, starter.text)
    load_recipe(args.out)  # what was written parses (a bug here, not the user's, if not)
    print(f"wrote {args.out} ({starter.data.summary()}); check it with "
          f"`distill run {args.out} --check`, then run it with `distill run {args.out}`")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from distill.artifacts import load
    from distill.cli_eval import evaluate_for_cli
    from distill.report.markdown import summary_table

    data, prepared = dataset(args)
    printed = mismatches(args, prepared)
    for line in printed:  # now: the evaluation may fail because of them
        print(f"WARNING: {line}", file=sys.stderr)
    model = load(args.model, trust_code=args.trust_code)
    teacher = None if args.teacher is None else load(args.teacher, trust_code=args.trust_code)
    try:
        result = evaluate_for_cli(args, model, teacher, data)
    except RuntimeError as err:  # inputs of another shape than the model takes
        raise ValueError(f"the model cannot run on this data ({err})"
                         + ("; see the WARNING above" if printed else "")) from err
    result["warnings"] = printed + result["warnings"]
    _warn(result, to_stdout=not args.json, printed=printed)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(summary_table(result))
    from distill.evaluate.hardware import describe_cpu

    print(f"latency: {args.threads} thread(s) on "
          f"{describe_cpu()}")
    for key in ("retention", "speedup", "compression"):
        note = result.get(f"{key}_note")  # retention_note: the teacher is near chance
        if result.get(key) is not None or note:
            value = "–" if result.get(key) is None else f"{result[key]:.4f}"
            print(f"{key}: {value}" + (f" ({note})" if note else ""))
    return 0


def _warn(metrics: dict[str, Any], to_stdout: bool = True, printed: Sequence[str] = ()) -> None:
    """Each warning first, "WARNING: ..." on stderr (but those ``printed`` there already),
    and (unless stdout is JSON) atop the summary too: numbers after one may mean nothing."""
    from distill.report.formatting import warnings_of

    for line in warnings_of(metrics):
        if line not in printed:
            print(f"WARNING: {line}", file=sys.stderr)
        if to_stdout:
            print(f"WARNING: {line}")


def _cmd_predict(args: argparse.Namespace) -> int:
    from distill.artifacts import load, read_metadata, read_preprocessing
    from distill.inference import (
        class_names_of,
        image_preprocessing,
        predict_images,
        preprocessing_mismatches,
    )

    recorded = read_preprocessing(args.model)
    given = {"size": args.size, "channels": args.channels, "mean": args.mean, "std": args.std}
    preprocessing = image_preprocessing(recorded, given, str(args.model))
    named = {k for k, v in given.items() if v is not None}
    for line in preprocessing_mismatches(recorded, preprocessing, f"the model {args.model}",
                                         named):
        print(f"WARNING: {line}", file=sys.stderr)
    model = load(args.model, trust_code=args.trust_code)
    names = class_names_of(read_metadata(args.model))
    for p in predict_images(model, args.images, preprocessing, names):
        print(f"{p.path}: {p.name} ({100 * p.probability:.2f}%)")
    return 0


def _cmd_cache(args: argparse.Namespace) -> int:
    from distill.artifacts import load
    from distill.teachers import cache_teacher

    data, prepared = dataset(args)
    for line in mismatches(args, prepared):
        print(f"WARNING: {line}", file=sys.stderr)
    cache = cache_teacher(
        load(args.model, trust_code=args.trust_code), data, args.out, top_k=args.top_k,
        samples=args.samples, temperature=args.temperature, seed=args.seed,
        sampler=args.sampler,
        dtype=args.dtype, batch_size=args.batch_size, overwrite=args.overwrite,
        progress=False if args.no_progress else None,
    )
    print(cache.describe())
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from distill.report.runs import runs_table

    print(runs_table(args.runs))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from distill import atomic
    from distill.report.html import render_html
    from distill.report.runs import read_run

    for folder in args.runs:
        page = folder / "report.html"
        atomic.write_text(page, render_html(read_run(folder)))
        print(f"wrote {page}")
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    import time

    from distill.hf import load_model, load_tokenizer
    from distill.lm import generate
    from distill.runtime import thread_count

    if args.max_new_tokens < 1:
        raise ValueError(f"--max-new-tokens must be >= 1, got {args.max_new_tokens}")
    names = [("model", args.model)] + ([("teacher", args.teacher)] if args.teacher else [])
    with thread_count(args.threads):
        for role, name in names:
            model = load_model(name, task="causal-lm",
                               trust_remote_code=args.trust_code).eval()
            tokenizer = load_tokenizer(name, trust_remote_code=args.trust_code)
            started = time.perf_counter()
            (text,) = generate(model, tokenizer, args.prompt, max_new_tokens=args.max_new_tokens,
                               temperature=args.temperature, top_p=args.top_p, seed=args.seed)
            seconds = time.perf_counter() - started
            tokens = len(tokenizer(text, add_special_tokens=False)["input_ids"])
            if len(names) > 1:
                print(f"--- {role}: {name}")
            print(args.prompt + text)
            print(f"({tokens} tokens in {seconds:.2f} s, {tokens / max(seconds, 1e-9):.1f} "
                  "tokens/s)", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from distill.artifacts import ArtifactError
    from distill.data.fashion_mnist import DatasetNotFoundError
    from distill.engine.loop import NonFiniteLossError
    from distill.recipes.loader import RecipeError
    from distill.recipes.runner import RunFolderError
    from distill.teachers import CacheError

    handled = (RecipeError, ArtifactError, DatasetNotFoundError, NonFiniteLossError,
               RunFolderError, CacheError, ValueError, TypeError, OSError)
    commands = {"run": _cmd_run, "init": _cmd_init, "eval": _cmd_eval, "predict": _cmd_predict,
                "cache": _cmd_cache, "compare": _cmd_compare, "plan": cmd_plan,
                "report": _cmd_report, "generate": _cmd_generate, "gguf": cmd_gguf}
    try:
        return commands[args.command](args)
    except handled as err:
        print(f"distill {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"distill {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
