"""How many distinct tokens the sampled caches of ``lm_targets.py`` hold per position.

n draws from a language model's next-token distribution repeat themselves where the teacher
is sure and spread out where it is not; stored as distinct ids with counts (2 + 1 bytes each,
plus the entropy and a count of distinct ids) a position would take 3·d + 3 bytes instead of
2·n + 2. This reads the caches ``benchmarks/lm_targets.py`` built and prints d per cache, so
the byte budget of such an encoding is measured, not guessed.

    python benchmarks/sampled_distinct.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from distill.paths import cache_dir


def distinct_per_position(folder: Path) -> np.ndarray:
    manifest = json.loads((folder / "manifest.json").read_text())
    counts = []
    for shard in manifest["shards"]:
        ids = np.load(folder / shard["files"]["indices"]["file"], mmap_mode="r",
                      allow_pickle=False)
        flat = np.sort(np.asarray(ids).reshape(-1, ids.shape[-1]), axis=-1)
        counts.append(1 + (np.diff(flat, axis=-1) != 0).sum(-1))
    return np.concatenate(counts)


def main() -> int:
    root = cache_dir() / "teacher-outputs" / "bench-lm-128x4x8"
    if not root.is_dir():
        raise SystemExit(f"{root} is missing: run benchmarks/lm_targets.py first")
    print("| cache | draws n | bytes as drawn (2n + 2) | distinct per position: mean, "
          "median, 90th pct | bytes as distinct ids + counts (3d + 3) |")
    print("|---|---:|---:|---:|---:|")
    for folder in sorted(root.glob("samples*")):
        n = json.loads((folder / "manifest.json").read_text())["fingerprint"]["settings"][
            "samples"]
        d = distinct_per_position(folder)
        print(f"| {folder.name} | {n} | {2 * n + 2} | {d.mean():.1f}, {np.median(d):.0f}, "
              f"{np.percentile(d, 90):.0f} | {3 * d.mean() + 3:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
