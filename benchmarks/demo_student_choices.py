"""The choices behind recipes/demo.toml's student, measured: alpha, width, epochs, batch size.

With 1,000 labels and 59,000 unlabelled images, distil the demo's shipped teacher into a CNN
student (one torch thread) and print its test accuracy per epoch.

    python benchmarks/demo_student_choices.py ALPHA EPOCHS CHANNELS [BATCH_SIZE [SEED]]
    python benchmarks/demo_student_choices.py 0.98 8 16,32 64 0   # the demo's setting, seed 0
    python benchmarks/demo_student_choices.py 0.5 5 24,48         # alpha 0.5: the labels dominate
    python benchmarks/demo_student_choices.py 0.98 5 24,48        # the previous, wider student
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

import distill
from distill.data import load_dataset

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    alpha, epochs = float(sys.argv[1]), int(sys.argv[2])
    channels = [int(c) for c in sys.argv[3].split(",")]
    batch_size = int(sys.argv[4]) if len(sys.argv) > 4 else 128
    seed = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    train, test = load_dataset("fashion-mnist", "train"), load_dataset("fashion-mnist", "test")
    teacher = distill.load(ROOT / "models" / "fashion-mnist-teacher")
    torch.manual_seed(seed)
    student = distill.build_cnn((1, 28, 28), 10, channels=channels, head="flatten", hidden=28)
    started = time.perf_counter()
    result = distill.distill(teacher, student, train.with_scarce_labels(1000), eval=test,
                             epochs=epochs, batch_size=batch_size, lr=3e-3, seed=seed,
                             num_threads=1,
                             loss=distill.KDLoss(temperature=2.0, alpha=alpha),
                             precompute_teacher=True, progress=False)
    print(f"alpha {alpha}, {epochs} epochs, channels {channels}, batch {batch_size}, seed {seed}: "
          f"test accuracy per epoch "
          f"{[round(h['eval_accuracy'], 4) for h in result.history]}, "
          f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
