"""Memory of a large CSV read in memory against read chunk by chunk into memory-mapped arrays.

Writes a CSV of ``--rows`` rows of ``--features`` float features and a class label (chunk by
chunk: writing it needs no memory either), then in a fresh process per mode loads it through
the ``table`` format and makes one pass of batches over the training split, as an epoch would.
A thread samples the process's anonymous resident memory (RssAnon: what the process itself
allocated; pages of a mapped file are the page cache's, which the kernel drops under pressure)
every 10 ms; the peak is reported with the load time. The streamed mode is run twice: the
second run reuses the arrays the first wrote in the cache.

    .venv/bin/python benchmarks/large_table.py --rows 2000000 --features 20
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "large_table.json"

CHILD = r"""
import json, sys, threading, time
import pyarrow.csv, torch
torch.set_num_threads(1)

peak = [0]
def rss_anon():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
def sample():
    while True:
        peak[0] = max(peak[0], rss_anon())
        time.sleep(0.01)
from distill.batches import Batches
from distill.data.formats import DATA_FORMATS, streamed  # imported before the baseline

threading.Thread(target=sample, daemon=True).start()
time.sleep(0.05)
base = rss_anon()

path, stream = sys.argv[1], sys.argv[2] == "true"
table = DATA_FORMATS.get("table")
start = time.perf_counter()
data = table.load(table.Options(path=path, label_column="label",
                                feature_columns="all-numeric", test_fraction=0.1,
                                stream=stream))
loaded = time.perf_counter() - start
total = 0.0
for batch in Batches(data.train, 4096, shuffle=True):
    total += float(batch.inputs.sum())
epoch = time.perf_counter() - start - loaded
time.sleep(0.05)
print(json.dumps({"stream": stream, "load_s": loaded, "epoch_s": epoch,
                  "peak_rss_anon": peak[0], "baseline_rss_anon": base,
                  "train_rows": len(data.train)}))
"""


def write_csv(path: Path, rows: int, features: int, seed: int = 0) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as csv

    rng = np.random.default_rng(seed)
    weights = rng.normal(size=features)
    names = [f"f{i}" for i in range(features)]
    schema = pa.schema([(n, pa.float64()) for n in names] + [("label", pa.string())])
    with csv.CSVWriter(path, schema) as writer:
        for start in range(0, rows, 100_000):
            n = min(100_000, rows - start)
            x = rng.normal(size=(n, features)).round(5)
            label = np.where(x @ weights > 0, "high", "low")
            writer.write_table(pa.table([*x.T, label], schema=schema))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--features", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "large.csv"
        write_csv(path, args.rows, args.features)
        size = path.stat().st_size
        env = {**os.environ, "DISTILL_CACHE": str(Path(folder) / "cache"),
               "OMP_NUM_THREADS": "1"}
        runs = []
        for stream in ("false", "true", "true"):
            out = subprocess.run([sys.executable, "-c", CHILD, str(path), stream], env=env,
                                 capture_output=True, text=True, check=True)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    mib = 1 << 20
    print(f"CSV: {args.rows:,} rows x {args.features} features, {size / mib:,.0f} MiB")
    print("| mode | load | one pass of batches | peak anonymous memory (above start) |")
    print("|---|---:|---:|---:|")
    for run, label in zip(runs, ("in memory", "streamed (first)", "streamed (reused)"),
                          strict=True):
        grown = (run["peak_rss_anon"] - run["baseline_rss_anon"]) / mib
        print(f"| {label} | {run['load_s']:.1f} s | {run['epoch_s']:.1f} s | {grown:,.0f} MiB |")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"rows": args.rows, "features": args.features,
                                   "csv_bytes": size, "runs": runs,
                                   "date": time.strftime("%Y-%m-%d"),
                                   "cpus": os.cpu_count()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
