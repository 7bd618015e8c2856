"""The demo's teacher, shipped in the repository: check it, or train it again with one flag.

``make demo`` distils a teacher it does not train: training it (16 epochs of a CNN with
flip-and-shift augmentation) takes about 5 minutes on 2 cores, the whole demo's budget. So the
teacher is trained once by this script, from the ``[teacher]`` table of
``recipes/fashion-mnist.toml`` (seed, epochs and threads fixed there), and saved in
``models/fashion-mnist-teacher/`` (safetensors + JSON, 3.3 MB); the demo recipe pins the
weights file's sha256, and loading refuses a file that does not match it.

    python benchmarks/demo_teacher.py            # verify the shipped teacher: sha256, accuracy
    python benchmarks/demo_teacher.py --retrain  # train it again, save it, print the new sha256

A retrained teacher matches the shipped one bit for bit only on the same CPU, torch build and
thread count (floating-point sums differ elsewhere); its accuracy is within a few tenths.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "recipes" / "fashion-mnist.toml"
FOLDER = ROOT / "models" / "fashion-mnist-teacher"
DEMO = ROOT / "recipes" / "demo.toml"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--retrain", action="store_true",
                        help="train the teacher again and replace the shipped one")
    args = parser.parse_args()

    import distill
    from distill.data import load_dataset
    from distill.evaluate.compare import evaluate_models
    from distill.recipes.loader import load_recipe
    from distill.recipes.teacher_setup import get_teacher

    test = load_dataset("fashion-mnist", "test")
    if args.retrain:
        recipe = load_recipe(SOURCE)  # trained from scratch, never taken from distill's cache
        recipe = recipe.model_copy(update={"teacher": recipe.teacher.model_copy(
            update={"cache": False})})
        train = load_dataset("fashion-mnist", "train")
        started = time.perf_counter()
        setup = get_teacher(recipe, train, test, progress=None)
        seconds = time.perf_counter() - started
        accuracy = setup.history[-1].get("eval_accuracy") if setup.history else None
        distill.save(setup.module, FOLDER, metadata={
            "source": "recipes/fashion-mnist.toml [teacher]", "test_accuracy": accuracy,
            "train_seconds": round(seconds, 1)})
        digest = sha256_of(FOLDER / "model.safetensors")
        if DEMO.is_file():  # the demo recipe pins the new weights
            text = DEMO.read_text()
            DEMO.write_text(re.sub(r'sha256 = "[0-9a-f]*"', f'sha256 = "{digest}"', text))
        print(f"trained in {seconds:.0f} s; saved {FOLDER}; sha256 {digest}")
    digest = sha256_of(FOLDER / "model.safetensors")
    pinned = re.search(r'sha256 = "([0-9a-f]{64})"', DEMO.read_text())
    teacher = distill.load(FOLDER)
    row = evaluate_models({"teacher": teacher}, test, latency_repeats=3)["teacher"]
    print(json.dumps({"folder": str(FOLDER.relative_to(ROOT)), "sha256": digest,
                      "pinned_in_demo_recipe": pinned.group(1) if pinned else None,
                      "test_accuracy": row["accuracy"],
                      "params": row.get("params")}, indent=2))
    return 0 if pinned and pinned.group(1) == digest else 1


if __name__ == "__main__":
    sys.exit(main())
