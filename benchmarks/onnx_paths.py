"""Which way to ONNX Runtime is fastest for a small BERT classifier on this CPU, and how far
distill's own path (`distill.quantize.onnx.to_onnx`, run through `OnnxModel`) is from it.

One MiniLM-shaped classifier (3 blocks, hidden 384, 12 heads, MLP 1,536, vocabulary 30,522;
random weights: speed does not depend on them) run every way side by side in one process:
PyTorch fp32 (SDPA attention, transformers' default, and eager attention), ONNX Runtime fp32
and dynamic int8 from both exporters (TorchScript-based and `dynamo=True`), with and without
ONNX Runtime's transformer fusions (`onnxruntime.transformers.optimizer`), int8 weights signed
(U8S8) or unsigned (U8U8), per tensor or per channel. Medians of ``--repeats`` calls after
warm-up, the ways taking turns call by call so a slow phase of the machine hits them alike.

    .venv/bin/python benchmarks/onnx_paths.py --seq 64 128 --batch 1 32 --threads 1 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))
from jobs import write_record  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "onnx_paths.json"
SHAPE = dict(hidden_size=384, num_attention_heads=12, intermediate_size=1536,
             num_hidden_layers=3, vocab_size=30522, num_labels=2)


class _Logits(torch.nn.Module):
    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


def models(seed: int = 0) -> dict[str, torch.nn.Module]:
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    sdpa = BertForSequenceClassification(BertConfig(**SHAPE, attn_implementation="sdpa")).eval()
    eager = BertForSequenceClassification(BertConfig(**SHAPE, attn_implementation="eager"))
    eager.load_state_dict(sdpa.state_dict())
    return {"sdpa": sdpa, "eager": eager.eval()}


def onnx_files(folder: Path, model: torch.nn.Module, example: dict[str, torch.Tensor]
               ) -> dict[str, Path]:
    """Every ONNX file to compare, written under ``folder``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    from distill.quantize.onnx import MODEL_FILE, to_onnx

    args, names = tuple(example.values()), list(example)
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    legacy = folder / "legacy.onnx"
    torch.onnx.export(_Logits(model), args, str(legacy), dynamo=False, opset_version=17,
                      input_names=names, output_names=["logits"],
                      dynamic_axes={n: {0: "batch", 1: "sequence"} for n in names})
    files["torchscript export, fp32"] = legacy
    fused = folder / "fused.onnx"
    optimize_model(str(legacy), model_type="bert", num_heads=12,
                   hidden_size=384).save_model_to_file(str(fused))
    files["torchscript export + fusions, fp32"] = fused
    for source, label in ((legacy, "torchscript export"), (fused, "torchscript + fusions")):
        for weights in ("QInt8", "QUInt8"):
            for per_channel in (False, True):
                target = folder / f"{source.stem}-{weights}-{per_channel}.onnx"
                quantize_dynamic(str(source), str(target), per_channel=per_channel,
                                 weight_type=getattr(QuantType, weights),
                                 extra_options={"DefaultTensorType": 1})  # fused ops' outputs
                kind = "U8S8" if weights == "QInt8" else "U8U8"
                files[f"{label}, int8 {kind}, per {'channel' if per_channel else 'tensor'}"] = (
                    target)
    fp32 = to_onnx(model, example, folder / "distill-fp32")
    int8 = to_onnx(model, example, folder / "distill-int8", int8=True)
    files["distill to_onnx (dynamo), fp32"] = fp32 / MODEL_FILE
    files["distill to_onnx (dynamo), int8"] = int8 / MODEL_FILE
    return files


def padded_error(path: Path, model: torch.nn.Module, seq: int) -> float:
    """Largest logit difference from PyTorch on two sequences, the second padded to half its
    length: an export that traced the all-ones mask of its example as a constant fails here."""
    ids = torch.randint(1000, 30000, (2, seq))
    mask = torch.ones_like(ids)
    mask[1, seq // 2:] = 0
    with torch.inference_mode():
        reference = model(input_ids=ids, attention_mask=mask).logits
    out = session(path, 1).run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})
    return float((torch.from_numpy(out[0]) - reference).abs().max())


SPIN = {"spin": "1"}  # ONNX Runtime's worker threads spin-wait between calls ("0": they sleep)


def session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.add_session_config_entry("session.intra_op.allow_spinning", SPIN["spin"])
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def time_turns(calls: dict[str, Callable[[], Any]], repeats: int, rounds: int = 3
               ) -> dict[str, float]:
    """Median milliseconds of each call. The calls take turns in ``rounds`` rounds, each a
    block of consecutive calls after 3 untimed ones: a slow phase of the machine hits every
    way alike, and no way runs while another runtime's threads are still busy-waiting from
    the call before (with 2 threads, alternating PyTorch and ONNX Runtime call by call measured
    their spinning threads fighting over the cores, not the models)."""
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    for r in range(rounds):
        for name, call in calls.items():
            for _ in range(3):
                call()
            for _ in range(repeats // rounds + (r < repeats % rounds)):
                started = time.perf_counter()
                call()
                seconds[name].append(time.perf_counter() - started)
    return {name: 1000 * statistics.median(s) for name, s in seconds.items()}


_EXPORTED: dict[Path, dict[str, Path]] = {}


def measure(seq: int, batch: int, threads: int, repeats: int, folder: Path,
            built: dict[str, torch.nn.Module]) -> tuple[dict[str, float], dict[str, float]]:
    """Median milliseconds of every way, and each ONNX file's error on padded input."""
    from distill.quantize.onnx import OnnxModel

    torch.set_num_threads(threads)
    ids = torch.randint(1000, 30000, (batch, seq))
    example = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    feed = {k: v.numpy() for k, v in example.items()}
    key = folder / f"s{seq}-b{batch}"
    if key not in _EXPORTED:  # exported once per shape, timed at each thread count
        _EXPORTED[key] = onnx_files(key, built["sdpa"], example)
    files = _EXPORTED[key]
    calls: dict[str, Callable[[], Any]] = {
        "pytorch fp32, SDPA attention": lambda: built["sdpa"](**example),
        "pytorch fp32, eager attention": lambda: built["eager"](**example),
    }
    for name, path in files.items():
        opened = session(path, threads)
        calls[name] = (lambda s=opened: s.run(None, feed))
    wrapped = OnnxModel(files["distill to_onnx (dynamo), int8"].parent)
    calls["distill int8 through OnnxModel"] = lambda: wrapped(**example)
    errors = {name: padded_error(path, built["sdpa"], seq) for name, path in files.items()}
    torch.set_num_threads(threads)
    with torch.inference_mode():
        return time_turns(calls, repeats), errors


def main(argv: list[str] | None = None) -> None:
    from distill.evaluate.hardware import cpu_features

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--batch", type=int, nargs="+", default=[1])
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--no-spinning", action="store_true",
                        help="ONNX Runtime's threads sleep between calls instead of spinning")
    args = parser.parse_args(argv)
    SPIN["spin"] = "0" if args.no_spinning else "1"
    started = time.perf_counter()
    built = models()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seq in args.seq:
            for batch in args.batch:
                for threads in args.threads:
                    ms, errors = measure(seq, batch, threads, args.repeats, Path(tmp), built)
                    rows.append({"seq": seq, "batch": batch, "threads": threads, "ms": ms,
                                 "padded_max_abs_error": errors})
    lines = []
    for row in rows:
        base = row["ms"]["pytorch fp32, SDPA attention"]
        lines.append(f"\n{row['seq']} tokens, batch {row['batch']}, {row['threads']} thread(s)")
        errors = row["padded_max_abs_error"]
        lines += [f"  {name:48s} {ms:8.2f} ms  {base / ms:5.2f}x"
                  + (f"  padded error {errors[name]:.1e}" if name in errors else "")
                  for name, ms in sorted(row["ms"].items(), key=lambda kv: kv[1])]
    record = {"cpu": cpu_features(), "shape": SHAPE, "repeats": args.repeats, "rows": rows,
              "onnxruntime_spinning": not args.no_spinning,
              "date": time.strftime("%Y-%m-%d"), "torch": torch.__version__}
    write_record(record, RESULTS, started, "\n".join(lines))


if __name__ == "__main__":
    main()
