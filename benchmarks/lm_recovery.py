"""Recovering SmolLM2-135M cut to half: distillation against cross-entropy at equal tokens.

Every row is `distill run` on a variant of `recipes/smollm2-shakespeare-mini.toml` (the same
loader, steps and metrics a user gets), with the training text bounded to ``--blocks`` blocks of
256 tokens and the held-out plays to ``--test-blocks`` blocks spread over all six of them. Each
run writes its folder under ``runs/recovery/`` and resumes there; finished runs are recorded in
``benchmarks/results/lm_recovery.jobs.jsonl`` (benchmarks/jobs.py), so an interrupted benchmark
redoes only what is missing. A run's cross-entropy twin does not use the teacher's targets, so
a pair still missing is composed from a KD-only probe that trained the same student and the
twin of a run that differed only in its targets, when both are logged (:func:`stand_in`).

Rows (each run trains the distilled student and, as its baseline, the same start on the text
alone, so every run is a pair at equal tokens and one seed):
- ``depth``: the 11 blocks the skip criterion keeps, recovered by KD (forward KL from the
  domain teacher's cached targets, the recipe's: 32 tokens drawn per position; alpha 0.9) and
  by cross-entropy; ``--seeds`` seeds;
- ``width``: every block kept, MLP neurons cut by activation to the same size; ``--seeds``;
- ``mixed``: depth and width (``way = "depth+width"``): the ``MIXED_BLOCKS`` most important
  blocks kept, then every MLP narrowed to the same size; ``--seeds``;
- ``random``: the depth cut's architecture with fresh weights (what the teacher's weights buy);
- ``sequence``: the domain teacher's own completions of training prompts as the text (its
  baseline is Kim & Rush's sequence-level distillation; its student adds token-level KD).

Set-up: ``make bench-lm`` and ``.venv/bin/python benchmarks/mini_tier_setup.py``.

    .venv/bin/python benchmarks/lm_recovery.py --blocks 400 --seeds 3 --jobs 1
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import tomllib

sys.path.insert(0, str(Path(__file__).parent))
from jobs import finished, job_key, machine, mean_std, run_jobs, write_record  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "smollm2-shakespeare-mini.toml"
RUNS = ROOT / "runs" / "recovery"
RESULTS = Path(__file__).parent / "results"
LOG = RESULTS / "lm_recovery.jobs.jsonl"
PROMPT_TOKENS = 64
# The mixed cut's blocks: at half the parameters, 15 blocks (MLP 989) decoded at 1.99× the
# teacher's speed, 17 at 1.84×, 19 at 1.76× (benchmarks/mini_cut_speed.py, 2026-12-01): the
# most width that keeps a margin over the 1.8× target.
MIXED_BLOCKS = 15
PROGRESS_ENV = "DISTILL_BENCH_PROGRESS"


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        elif value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def variant(job: dict[str, Any]) -> dict[str, Any]:
    """The recipe's tables for one job (the shipped recipe with the job's changes)."""
    data = tomllib.loads(RECIPE.read_text())
    changes: dict[str, Any] = {
        "name": f"recovery-{job['row']}-s{job['seed']}",
        "data": {"max_blocks": job["blocks"], "test_blocks": job["test_blocks"]},
        "train": {"seed": job["seed"]},
        "evaluate": {"batch_sizes": [1], "latency_repeats": 10},
        "export": {"gguf": ["f16", "q8_0"] if job["row"] == "depth" and job["seed"] == 0
                   else []},
    }
    if "lr" in job:
        changes["train"]["lr"] = job["lr"]
    # the recipe's clipping came after the first rows: a job that does not name it ran unclipped
    changes["train"]["grad_clip"] = job.get("grad_clip")
    for dotted, value in job.get("set", {}).items():  # a probe's other changes
        *tables, key = dotted.split(".")
        place = changes
        for table in tables:
            place = place.setdefault(table, {})
        place[key] = value
    if job.get("kd_only"):
        changes["baseline"] = {"enabled": False}
    if job.get("tuned_teacher"):  # recovering on more text than the teacher was tuned on
        changes["teacher"] = {"model": job["tuned_teacher"], "finetune": None}
    # The shipped recipe cuts depth and width; every row names its cut, so a change to the
    # recipe's cut does not silently change what an earlier row measured.
    depth = {"way": "depth", "blocks": None}
    if job["row"] in ("depth", "sequence"):
        changes["student"] = dict(depth)
    if job["row"] == "width":
        changes["student"] = {"way": "width", "criterion": None, "blocks": None}
    if job["row"] == "mixed":
        changes["student"] = {"way": "depth+width", "blocks": MIXED_BLOCKS}
    if job["row"] == "random":
        changes["student"] = {**depth, "init": "random"}
    if job["row"] == "sequence":
        changes["data"].update(path=str(job["corpus"]), prompt_field="prompt",
                               completion_field="completion",
                               max_length=PROMPT_TOKENS + job["new_tokens"], max_blocks=None)
        changes["teacher"] = {"model": job["teacher"], "finetune": None}
    return _merge(data, changes)


def run_one(job: dict[str, Any]) -> dict[str, Any]:
    from distill.recipes.loader import parse_recipe
    from distill.recipes.runner import run_recipe

    out = ROOT / job["out"]
    if job["row"] == "sequence":
        job = {**job, "corpus": str(generations(job)), "teacher": job["teacher"]}
    recipe = parse_recipe(variant(job), str(RECIPE), RECIPE.parent)
    # --progress: the training bar, with its running loss, into the log (a worker inherits it)
    progress = os.environ.get(PROGRESS_ENV) == "1"
    metrics = run_recipe(recipe, out, resume=out.exists(), force=True, progress=progress)
    return summary(metrics)


def summary(m: dict[str, Any]) -> dict[str, Any]:
    """What the table reads from a run's metrics.json."""
    keep = ("perplexity", "kl_to_teacher", "agreement", "params", "size_bytes",
            "decode_tokens_per_s")
    out = {role: {k: m[role][k] for k in keep if k in m.get(role, {})}
           for role in ("teacher", "student", "baseline")}
    out["teacher_before_finetune"] = m.get("teacher_before_finetune", {}).get("perplexity")
    out["student_before_recovery"] = m.get("student_before_recovery")
    out["generation_speed"] = m.get("generation_speed")
    out["gguf"] = m.get("gguf")
    out["teacher_path"] = m.get("teacher_path")
    out["test_tokens"] = m["student"].get("tokens")
    out["history"] = m.get("history")
    return out


def generations(job: dict[str, Any]) -> Path:
    """The domain teacher's completions of prompts cut from the training plays, written once:
    ``job['prompts']`` prompts of 64 tokens spread over the plays, ``job['new_tokens']`` tokens
    each, nucleus-sampled (T=1, top-p 0.9); with ``job['min_new_tokens']``, no completion ends
    before that many (the first corpus, without, stopped at a median of 43 of 192 tokens)."""
    least = job.get("min_new_tokens")
    path = (ROOT / job["out"]).parent / (f"generations-{job['prompts']}x{job['new_tokens']}"
                                         f"{f'-min{least}' if least else ''}.jsonl")
    if path.is_file():
        return path
    import torch

    from distill.hf import load_model, load_tokenizer
    from distill.lm import causal_blocks, write_generations

    teacher = load_model(job["teacher"], "causal-lm").eval()
    tokenizer = load_tokenizer(job["teacher"])
    plays = sorted((ROOT / "data" / "shakespeare" / "train").glob("*.txt"))
    blocks = causal_blocks([p.read_text(encoding="utf-8") for p in plays], tokenizer,
                           PROMPT_TOKENS, max_blocks=job["prompts"], spread=True)
    prompts = tokenizer.batch_decode(blocks.encodings["input_ids"])
    torch.manual_seed(0)
    write_generations(teacher, tokenizer, prompts, path, max_new_tokens=job["new_tokens"],
                      min_new_tokens=least, temperature=1.0, top_p=0.9, seed=0, batch_size=16,
                      progress=False)
    return path


def targets_of(teacher: dict[str, Any]) -> str:
    """A short name for a ``[teacher]`` table's targets: ``top32``, ``sampled32``, ``dense``."""
    if teacher.get("outputs", "online") != "cached":
        return "online"
    kinds = [f"top{teacher['top_k']}" if teacher.get("top_k") else "",
             f"sampled{teacher['samples']}" if teacher.get("samples") else ""]
    return "+".join(k for k in kinds if k) or "dense"


def recipe_lr() -> float:
    return float(tomllib.loads(RECIPE.read_text())["train"]["lr"])


def jobs_for(args: argparse.Namespace, teacher: str | None) -> list[dict[str, Any]]:
    common = {"blocks": args.blocks, "test_blocks": args.test_blocks}
    # the three ways to cut get every seed; the random start (far from all) and the sequence row
    # (which first has the teacher write its text) one
    jobs = [{**common, "row": row, "seed": s} for row in ("depth", "width", "mixed")
            for s in range(args.seeds)]
    jobs.append({**common, "row": "random", "seed": 0})
    if teacher is not None:  # the same number of learned tokens, written by the teacher: every
        new = 192  # completion runs to its full length
        jobs.append({**common, "row": "sequence", "seed": 0, "teacher": teacher,
                     "prompts": args.blocks * 256 // new, "new_tokens": new,
                     "min_new_tokens": new})
    runs = args.runs.resolve().relative_to(ROOT)
    for job in jobs:
        # the step size is part of a run's name and key: a recipe tuned later never resumes, or
        # reads as finished, a run made with another
        job["lr"] = args.lr if args.lr is not None else recipe_lr()
        shipped = tomllib.loads(RECIPE.read_text())
        changed = {key for key, _ in args.set}
        # so are the recipe's teacher targets (a probe's --set that names the teacher, its own)
        if not any(k.startswith("teacher.") for k in changed):
            job["targets"] = targets_of(shipped["teacher"])
        # and its gradient clipping: a job logged without it trained unclipped (variant)
        clip = {"recipe": shipped["train"].get("grad_clip"), "none": None}.get(
            args.grad_clip, args.grad_clip)
        if clip is not None and "train.grad_clip" not in changed:
            job["grad_clip"] = clip
        name = f"{job['row']}-b{job['blocks']}-s{job['seed']}-lr{job['lr']:g}"
        name += f"-{job['targets']}" if "targets" in job else ""
        name += f"-clip{job['grad_clip']:g}" if "grad_clip" in job else ""
        name += f"-min{job['min_new_tokens']}" if job.get("min_new_tokens") else ""
        if args.set:
            job["set"] = dict(args.set)
            name += "".join(f"-{k.split('.')[-1]}{v}" for k, v in args.set)
        if args.kd_only:
            job["kd_only"] = True
            name += "-kd"
        if args.tuned_teacher:
            job["tuned_teacher"] = teacher
            name += "-tunedteacher"
        job["out"] = str(runs / name)
    return [j for j in jobs if j["row"] in args.rows]


TARGET_FIELDS = ("outputs", "top_k", "samples")  # what the teacher hands the student


def _trains(job: dict[str, Any]) -> dict[str, Any]:
    """The recipe a job's distilled student trains by (its name and twin left out)."""
    tables = variant(job)
    for table in ("name", "baseline"):
        tables.pop(table, None)
    return tables


def _twin_trains(job: dict[str, Any]) -> dict[str, Any]:
    """The recipe its cross-entropy twin trains by: the teacher's targets and the KD loss play
    no part in it (the cut and the data order do)."""
    tables = _trains(job)
    tables.pop("loss", None)
    for field in TARGET_FIELDS:
        tables["teacher"].pop(field, None)
    return tables


def _pinned(job: dict[str, Any], targets: bool = True) -> bool:
    """Whether a logged job says what it trained: its step size, and (``targets``) the
    teacher's targets. Jobs logged before those were in the key ran a recipe that changed
    since; the recipe's targets changed too, so a job that names ``targets`` other than
    today's still pins its twin, not its student."""
    if job["row"] == "sequence" or "lr" not in job:
        return False
    if not targets:
        return True
    if "targets" in job:
        return targets_of(variant(job)["teacher"]) == job["targets"]
    return any(k.split(".")[0] == "teacher" for k in job.get("set", {}))


def stand_in(job: dict[str, Any], done: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """A finished pair for ``job`` made of runs logged under other keys: a probe that trained
    the same student (a KD-only run with the recipe's targets spelled out) and the twin of a run
    that differed only in the teacher's targets. None when either is missing. The result names
    both keys (``composed_from``), so the table can be traced to the runs."""
    if job["row"] == "sequence" or job.get("set") or job.get("kd_only"):
        return None
    logged = [(json.loads(k), k, r) for k, r in done.items()]
    kd = next(((k, r) for j, k, r in logged if _pinned(j) and _trains(j) == _trains(job)),
              None)
    twin = next(((k, r) for j, k, r in logged if _pinned(j, targets=False)
                 and r.get("baseline") and _twin_trains(j) == _twin_trains(job)), None)
    if kd is None or twin is None:
        return None
    return {**kd[1], "baseline": twin[1]["baseline"], "composed_from": [kd[0], twin[0]]}


def compose(jobs: list[dict[str, Any]], done: dict[str, dict[str, Any]]
            ) -> dict[str, dict[str, Any]]:
    """A stand-in for every unfinished job that has one (see :func:`stand_in`), by key."""
    found = {job_key(j): stand_in(j, done) for j in jobs if job_key(j) not in done}
    return {key: result for key, result in found.items() if result is not None}


ROW_NAMES = {"depth": "depth cut (skip criterion)", "width": "width cut (MLP neurons)",
             "mixed": f"depth and width ({MIXED_BLOCKS} blocks, narrower MLPs)",
             "random": "depth cut's shape, random init", "sequence": "depth cut, teacher's text"}


def _cell(values: list[float]) -> str:
    if not values:
        return "–"
    found = mean_std(values)
    return (f"{found['mean']:.2f} ± {found['std']:.2f}" if len(values) > 1
            else f"{found['mean']:.2f}")


def _percent(shares: list[float]) -> str:
    found = mean_std(shares)
    return (f"{100 * found['mean']:.0f} ± {100 * found['std']:.0f}%" if len(shares) > 1
            else f"{100 * found['mean']:.0f}%")


def markdown(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> str:
    """The recovery table: per row, the distilled student and its cross-entropy twin (the
    sequence row: its twin is Kim & Rush's sequence-level distillation), seeds pooled."""
    first = pairs[0][1]
    teacher = first["teacher"]
    lines = [f"Teacher (domain-tuned): held-out perplexity {teacher['perplexity']:.2f}, "
             f"{teacher['params']:,} parameters; before tuning "
             f"{first['teacher_before_finetune'] or float('nan'):.2f}.", "",
             "| row | parameters | seeds | KD student perplexity | its cross-entropy twin | "
             "KD ÷ teacher | gap closed by KD | decode speed-up |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row, name in ROW_NAMES.items():
        mine = [r for j, r in pairs if j["row"] == row]
        if not mine:
            continue
        kd = [r["student"]["perplexity"] for r in mine]
        ce = [r["baseline"]["perplexity"] for r in mine if "perplexity" in r["baseline"]]
        t = mine[0]["teacher"]["perplexity"]
        gaps = ([(c - k) / (c - t) for k, c in zip(kd, ce, strict=True) if c > t]
                if len(ce) == len(kd) else [])
        speed = [r["student"]["decode_tokens_per_s"] / r["teacher"]["decode_tokens_per_s"]
                 for r in mine if r["student"].get("decode_tokens_per_s")]
        composed = sum("composed_from" in r for r in mine)
        name += f" ({composed} of {len(mine)} pairs composed†)" if composed else ""
        lines.append(
            f"| {name} | {mine[0]['student']['params']:,} | {len(mine)} | {_cell(kd)} | "
            f"{_cell(ce)} | {mean_std(kd)['mean'] / t:.2f}× | "
            + (_percent(gaps) if gaps else "–")
            + f" | {_cell(speed)}× |")
    if any("composed_from" in r for _, r in pairs):
        lines += ["", "† the distilled student and its twin were trained by two runs that "
                  "differed only in the teacher's targets (the twin does not use them); "
                  "``composed_from`` in the job log names both."]
    return "\n".join(lines)


def _setting(text: str) -> tuple[str, Any]:
    key, _, value = text.partition("=")
    return key, None if value == "none" else json.loads(value)


def every_run(log: Path) -> str:
    """Every finished run, probes included: what each changed and what it reached."""
    lines = ["| row | blocks | seed | lr | changed | KD student perplexity | cross-entropy twin | "
             "KD training s |", "|---|---:|---:|---:|---|---:|---:|---:|"]
    for key, r in finished(log).items():
        job = json.loads(key)
        changed = (", ".join(f"{k} = {v}" for k, v in job.get("set", {}).items())
                   or job.get("targets", "–"))
        twin = r["baseline"].get("perplexity")
        history = r["history"]["student"]
        seconds = f"{history[-1]['seconds']:.0f}" if history else "–"
        lines.append(
            f"| {job['row']} | {job['blocks']} | {job['seed']} | {job.get('lr', '2e-4 (then)')} "
            f"| {changed} | {r['student']['perplexity']:.2f} | "
            f"{f'{twin:.2f}' if twin else '–'} | {seconds} |")
    return "\n".join(lines)


def _clip(text: str) -> float | str | None:
    return text if text in ("none", "recipe") else float(text)


def tuned_teacher(done: dict[str, dict[str, Any]]) -> str | None:
    """The tuned teacher of a finished run that is still in the cache (the sequence row's
    key names it)."""
    return next((r["teacher_path"] for r in done.values()
                 if r.get("teacher_path") and Path(r["teacher_path"]).is_dir()), None)


def retune_teacher(log: Path) -> str | None:
    """A machine that lost its cache: tune the teacher the ``--tuned-teacher`` runs name again,
    as a logged run that tuned it did (the same recipe values and text). The cache folder is
    new (the data's fingerprint counts its files' modification times), so the key of a run on
    it names the new folder; its tuned perplexity is printed beside the logged one to compare."""
    from distill.recipes.loader import parse_recipe
    from distill.recipes.steps import load_data
    from distill.recipes.teacher_setup import get_teacher

    records = [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []
    jobs = [(json.loads(r["key"]), r["result"]) for r in records]
    named = [j["tuned_teacher"] for j, _ in jobs if j.get("tuned_teacher")]
    found = next(((j, r) for j, r in reversed(jobs) if named
                  and r.get("teacher_path") == named[-1] and not j.get("tuned_teacher")), None)
    if found is None:
        return None
    job, result = found
    recipe = parse_recipe(variant(job), str(RECIPE), RECIPE.parent)
    train, test, tokenizer = load_data(recipe)
    print(f"tuning the teacher again as {job['out']} did", file=sys.stderr)
    setup = get_teacher(recipe, train, test, True, tokenizer)
    tuned = [h.get("eval_perplexity") for h in setup.history or []]
    print(f"teacher tuned again: {setup.path}; held-out perplexity {tuned[-1] if tuned else '?'} "
          f"(logged: {result['teacher']['perplexity']:.4f})", file=sys.stderr)
    return str(setup.path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=400, help="training blocks of 256 tokens")
    parser.add_argument("--test-blocks", type=int, default=48)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=1, help="runs side by side")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads per run (jobs × threads ≤ cores, or they fight)")
    parser.add_argument("--rows", nargs="+",
                        default=["depth", "width", "mixed", "random", "sequence"])
    parser.add_argument("--lr", type=float, default=None,
                        help="this step size instead of the recipe's (a probe)")
    parser.add_argument("--grad-clip", type=_clip, default="recipe", metavar="NORM|none",
                        help="this gradient clipping instead of the recipe's; 'none' for the "
                             "rows logged before the recipe clipped")
    parser.add_argument("--set", nargs="+", type=_setting, default=[], metavar="TABLE.KEY=JSON",
                        help="a probe: recipe values changed (teacher.outputs='\"online\"')")
    parser.add_argument("--kd-only", action="store_true",
                        help="a probe: no cross-entropy twin (the baseline)")
    parser.add_argument("--tuned-teacher", action="store_true",
                        help="a probe: the teacher the finished runs tuned (on their blocks), "
                             "not one tuned on --blocks: a longer recovery, the same teacher")
    parser.add_argument("--progress", action="store_true",
                        help="write the training bars (running loss, samples/s) to stderr, "
                             "so a long run's log shows how its loss moves")
    parser.add_argument("--runs", type=Path, default=RUNS, help="the run folders (in the repo)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--table", action="store_true",
                        help="print the table of the runs finished so far; run nothing")
    parser.add_argument("--every-run", action="store_true",
                        help="print every finished run, probes included; run nothing")
    args = parser.parse_args(argv)
    log = args.results / LOG.name
    if args.every_run:
        print(every_run(log))
        return
    if args.table:
        done = finished(log)
        done.update(compose(jobs_for(args, None), done))
        teacher = tuned_teacher(done)
        pairs = [(j, done[job_key(j)]) for j in jobs_for(args, teacher) if job_key(j) in done]
        print(markdown(pairs) if pairs else "no finished runs yet")
        return
    if args.progress:
        os.environ[PROGRESS_ENV] = "1"
    started = time.perf_counter()
    # Without the tuned teacher in the cache, the first job still to run tunes it, caches its
    # outputs and the block scores: it runs alone, so it has every core (side by side, each job
    # would tune its own copy). A cache lost with the machine is rebuilt the same way.
    teacher = tuned_teacher(finished(log))
    if teacher is None and args.tuned_teacher:
        teacher = retune_teacher(log)
    if teacher is None and args.tuned_teacher:
        parser.error("--tuned-teacher: no finished run tuned a teacher")
    if teacher is None:
        done = finished(log)
        first = [j for j in jobs_for(args, None) if job_key(j) not in done][:1]
        cores = int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)
        ran = run_jobs(run_one, first, log, 1, threads=cores) if first else []
        teacher = ran[0]["teacher_path"] if ran else teacher
    jobs = jobs_for(args, teacher)
    for key, result in compose(jobs, finished(log)).items():  # logged, so the record has them
        with log.open("a") as f:
            f.write(json.dumps({"key": key, "result": result}) + "\n")
        print(f"{json.loads(key)['out']}: composed from {result['composed_from']}", flush=True)
    results = run_jobs(run_one, jobs, log, args.jobs, threads=args.threads)
    record = {"machine": machine(args.jobs, args.threads), "date": time.strftime("%Y-%m-%d"),
              "blocks": args.blocks, "test_blocks": args.test_blocks,
              "runs": [{"job": j, "result": r} for j, r in zip(jobs, results, strict=True)]}
    for row in ("depth",):
        pairs = [r for j, r in zip(jobs, results, strict=True) if j["row"] == row]
        if pairs:
            record[f"{row}_student_perplexity"] = mean_std(
                [r["student"]["perplexity"] for r in pairs])
            baseline = [r["baseline"]["perplexity"] for r in pairs if r["baseline"]]
            if baseline:
                record[f"{row}_baseline_perplexity"] = mean_std(baseline)
    lines = [f"{j['row']} seed {j['seed']}: student {r['student']['perplexity']:.2f}, baseline "
             f"{r['baseline'].get('perplexity', float('nan')):.2f}, "
             f"teacher {r['teacher']['perplexity']:.2f}"
             for j, r in zip(jobs, results, strict=True)]
    record["markdown"] = markdown(list(zip(jobs, results, strict=True)))
    probe = (args.lr not in (None, recipe_lr()) or args.kd_only or bool(args.set)
             or args.tuned_teacher)
    name = "lm_recovery_probe.json" if probe else "lm_recovery.json"
    write_record(record, args.results / name, started,
                 "\n".join(lines) + "\n\n" + record["markdown"])
    print(json.dumps({k: v for k, v in record.items() if k.endswith("perplexity")}, indent=1))


if __name__ == "__main__":
    main()
