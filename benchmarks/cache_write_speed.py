"""How fast a teacher cache fills, next to the teacher's own forward pass.

Filling a cache is the teacher's forward pass over the transfer set plus what the cache adds:
the finiteness check, the top-k selection or the draws of sampled targets, the conversion to
float16 and the writes. SmolLM2-135M-Instruct on blocks of Shakespeare, one thread, batches of
4 sequences; every round times the bare forward pass (the logits made and dropped) and then
``distill.cache_teacher`` for each kind into a fresh folder, rows interleaved so a slow spell of
the machine hits every kind. The weights' fingerprint (a sha256 over 540 MB, computed once per
teacher and per call) is timed apart and left out of the cache rows: it is paid once per cache,
not per row.

    python benchmarks/cache_write_speed.py --rounds 3
    python benchmarks/cache_write_speed.py --profile "sampled n=12, stratified" --rows 16

Set-up as for the other language-model benchmarks (make bench-lm).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from jobs import machine, write_record  # noqa: E402

import distill  # noqa: E402
from distill.batches import Batches, forward  # noqa: E402

KINDS = {  # row name -> cache_teacher settings
    "dense float16": {},
    "top-50": {"top_k": 50},
    "sampled n=12, stratified": {"samples": 12, "sampler": "stratified"},
    "sampled n=12, independent": {"samples": 12, "sampler": "multinomial"},
    "hybrid top-4 + 6, stratified": {"top_k": 4, "samples": 6, "sampler": "stratified"},
}
BATCH = 4


def _seconds(fn) -> tuple[float, float]:
    started, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - started, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    from lm_data import dataset, load_smollm2, split_plays, token_blocks

    from distill.teachers import fingerprint

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=32, help="sequences cached per round")
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "cache_write_speed.json")
    parser.add_argument("--profile", choices=list(KINDS),
                        help="profile one fill of this kind (cProfile, by own time); no table")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    torch.set_num_threads(1)
    teacher, tokenizer = load_smollm2()
    train_texts, _ = split_plays()
    blocks = token_blocks(tokenizer, ["\n".join(train_texts)], args.length + 1, limit=args.rows)
    data = dataset(blocks, "train", int(teacher.config.vocab_size))
    positions = blocks.shape[0] * (blocks.shape[1] - 1)

    def bare_forward() -> None:
        with torch.no_grad():
            for batch in Batches(data, BATCH, shuffle=False):
                forward(teacher, batch.inputs)

    scratch = Path(tempfile.mkdtemp(prefix="cache-speed-"))
    weights_sha = _seconds(lambda: fingerprint.teacher_fingerprint(teacher))
    real_fingerprint = fingerprint.teacher_fingerprint(teacher)
    times: dict[str, list[tuple[float, float]]] = {"teacher forward": []}
    times.update({name: [] for name in KINDS})
    try:
        # the fingerprint is timed above; inside the rows it is the stored answer
        distill.teachers.cache.teacher_fingerprint = lambda _t: real_fingerprint
        bare_forward()  # warm-up: lazy initialisation, allocator pools
        if args.profile:
            return _profile(lambda: distill.cache_teacher(
                teacher, data, scratch / "profiled", dtype="float16", batch_size=BATCH,
                progress=False, overwrite=True, **KINDS[args.profile]))
        for _ in range(args.rounds):
            times["teacher forward"].append(_seconds(bare_forward))
            for name, settings in KINDS.items():
                folder = scratch / name.replace(" ", "-")
                times[name].append(_seconds(lambda f=folder, s=settings: distill.cache_teacher(
                    teacher, data, f, dtype="float16", batch_size=BATCH, progress=False,
                    overwrite=True, **s)))
                shutil.rmtree(folder)
            print({k: round(v[-1][1], 2) for k, v in times.items()}, flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    rows = []
    for name, measured in times.items():
        cpu = statistics.median(c for _, c in measured)
        per_round = [c / f for (_, c), (_, f) in zip(measured, times["teacher forward"],
                                                     strict=True)]
        rows.append({"row": name, "wall_seconds": statistics.median(w for w, _ in measured),
                     "cpu_seconds": cpu, "positions_per_second": positions / cpu,
                     "ratio_to_forward": cpu / statistics.median(
                         c for _, c in times["teacher forward"]),
                     "ratio_range": [min(per_round), max(per_round)], "runs": measured})
    table = ["| pass | positions/s (CPU time) | × the teacher's forward (rounds' range) |",
             "|---|---:|---:|"]
    for r in rows:
        low, high = r["ratio_range"]
        table.append(f"| {r['row']} | {r['positions_per_second']:,.0f} | "
                     f"{r['ratio_to_forward']:.2f}× ({low:.2f}–{high:.2f}) |")
    table.append(f"\nThe weights' fingerprint: {weights_sha[1]:.1f} s CPU, once per cache.")
    record = {"machine": machine(1), "date": time.strftime("%Y-%m-%d"), "rows": rows,
              "positions": positions, "batch": BATCH, "fingerprint_seconds": weights_sha,
              "markdown": "\n".join(table)}
    write_record(record, args.out, started, record["markdown"])
    return 0


def _profile(fill) -> int:
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.runcall(fill)
    pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
