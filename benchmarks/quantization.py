"""Quantizing distilled students: accuracy, size on disk and CPU latency of every kind.

Two students: the Fashion-MNIST CNN student of the Hinton benchmark (distilled from its
teacher once, cached) and the 3-layer MiniLM sentiment student (DistilBERT-style, distilled
from the fine-tuned 6-layer teacher once, cached). Each is measured as fp32, float16,
bfloat16, dynamic int8 (torch), static int8 (torch, calibrated; CNN only: torch.fx cannot trace
the transformer), weight-only int4, QAT+KD int8 (a fake-quantized copy distilled from the
teacher, then converted: static for the CNN, dynamic for the transformer, which also goes to
ONNX Runtime), and through ONNX Runtime in fp32, dynamic int8 and static int8 (calibrated).
Sizes are the saved files; latency is one thread, batch 1 and 32 (transformer: 64 tokens), all
kinds interleaved, medians after warm-up.

    python benchmarks/quantization.py              # both students
    python benchmarks/quantization.py --only cnn

Set-up: make bench-hf, plus pip install '.[onnx]'.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

import distill
from distill.data.fashion_mnist import load_fashion_mnist
from distill.hf import keep_layers, load_tokenizer
from distill.paths import cache_dir
from distill.quantize import (
    cast,
    convert_qat,
    prepare_qat,
    quantize_dynamic,
    quantize_static,
    quantize_weights,
    to_onnx,
    without_fake_quant,
)

KD = dict(temperature=2.0, alpha=0.5)  # the Hinton benchmark's best setting
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from distilbert_minilm import KEEP, STUDENT_TRAIN, TEACHER_TRAIN, datasets, get_teacher  # noqa: E402
from hinton_fashion_mnist import STUDENTS  # noqa: E402
from hinton_fashion_mnist import TEACHER_TRAIN as CNN_TEACHER_TRAIN  # noqa: E402
from hinton_fashion_mnist import get_teacher as get_cnn_teacher  # noqa: E402
from jobs import machine, write_record  # noqa: E402


def _cached_student(name: str, settings: dict, build) -> Path:
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    folder = cache_dir() / "students" / f"{name}-{digest}"
    if not (folder / "config.json").is_file():
        build(folder)
    return folder


def cnn_student(threads: int) -> tuple[Path, Path]:
    teacher_path, _ = get_cnn_teacher(dict(CNN_TEACHER_TRAIN), threads=threads, limit=None)
    settings = {"teacher": teacher_path.name, "student": STUDENTS["cnn-86k"], "kd": KD,
                "epochs": 10}

    def build(folder: Path) -> None:
        train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
        torch.manual_seed(0)
        student = distill.build_cnn((1, 28, 28), 10, **STUDENTS["cnn-86k"])
        distill.distill(distill.load(teacher_path), student, train, eval=test, epochs=10,
                        loss=distill.KDLoss(KD["temperature"], KD["alpha"]),
                        batch_size=128, lr=3e-3, num_threads=threads, precompute_teacher=True)
        distill.save(student, folder)

    return teacher_path, _cached_student("fashion-cnn-86k", settings, build)


def transformer_student(threads: int) -> tuple[Path, Path]:
    teacher_dir = get_teacher(None, TEACHER_TRAIN["epochs"], threads)
    settings = {"teacher": teacher_dir.name, "keep": KEEP, "train": STUDENT_TRAIN, "epochs": 3}

    def build(folder: Path) -> None:
        from distill.hf import save_pretrained

        tokenizer = load_tokenizer(teacher_dir)
        train, test = datasets(tokenizer, None)
        teacher = distill.load(teacher_dir)
        student = keep_layers(teacher, KEEP)
        loss = distill.CombinedLoss({"kd": distill.KDLoss(2.0, 0.5),
                                     "hidden": distill.HiddenStateLoss(student, teacher)})
        distill.distill(teacher, student, train, eval=test, loss=loss, epochs=3,
                        num_threads=threads, **STUDENT_TRAIN)
        loss.release()
        save_pretrained(student, folder, tokenizer)

    return teacher_dir, _cached_student("minilm-3layer", settings, build)


def kinds_for_cnn(student: torch.nn.Module, teacher_path: Path, threads: int, folder: Path):
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    teacher = distill.load(teacher_path)
    qat = prepare_qat(student, train)
    distill.distill(teacher, qat, train, epochs=1, lr=1e-4, batch_size=128, num_threads=threads,
                    loss=distill.KDLoss(KD["temperature"], KD["alpha"]), progress=False)
    models = {
        "fp32": student, "float16": cast(student, "float16"), "bfloat16": cast(student, "bfloat16"),
        "dynamic int8 (torch)": quantize_dynamic(student),
        "static int8 (torch)": quantize_static(student, train, batches=16),
        "weight-only int4": quantize_weights(student, bits=4, group_size=32),
        "QAT+KD int8 (torch)": convert_qat(qat, student),
    }
    to_onnx(student, test.inputs[:2], folder / "onnx-fp32")
    to_onnx(student, test.inputs[:2], folder / "onnx-int8", int8="dynamic")
    to_onnx(student, test.inputs[:2], folder / "onnx-static", int8="static", calibration=train,
            calibration_batches=16)
    models["ONNX Runtime fp32"] = distill.load(folder / "onnx-fp32")
    models["ONNX Runtime dynamic int8"] = distill.load(folder / "onnx-int8")
    models["ONNX Runtime static int8"] = distill.load(folder / "onnx-static")
    return models, test


def kinds_for_transformer(student_dir: Path, teacher_dir: Path, threads: int, folder: Path):
    student = distill.load(student_dir)
    train, test = datasets(load_tokenizer(student_dir), None)
    # dynamic QAT (FX cannot trace the HF model): one epoch distilled from the 6-layer teacher
    qat = prepare_qat(student, skip=["classifier"])
    distill.distill(distill.load(teacher_dir), qat, train, epochs=1, num_threads=threads,
                    loss=distill.KDLoss(KD["temperature"], KD["alpha"]), progress=False,
                    **{**STUDENT_TRAIN, "lr": 2e-5})
    test.trim_padding = False  # 64 tokens: the deployed shape
    example = {k: v[:2] for k, v in test.encodings.items()}
    models = {
        "fp32": student, "float16": cast(student, "float16"), "bfloat16": cast(student, "bfloat16"),
        "dynamic int8 (torch)": quantize_dynamic(student, skip=["classifier"]),
        "weight-only int4": quantize_weights(student, bits=4, group_size=32, skip=["classifier"]),
        "QAT+KD int8 (torch)": convert_qat(qat, student),
    }
    to_onnx(without_fake_quant(qat), example, folder / "onnx-qat", int8=True)
    to_onnx(student, example, folder / "onnx-fp32")
    to_onnx(student, example, folder / "onnx-int8", int8=True)
    to_onnx(student, example, folder / "onnx-static", int8="static", calibration=train,
            calibration_batches=16)
    models["ONNX Runtime fp32"] = distill.load(folder / "onnx-fp32")
    models["ONNX Runtime dynamic int8"] = distill.load(folder / "onnx-int8")
    models["ONNX Runtime static int8"] = distill.load(folder / "onnx-static")
    models["QAT+KD ONNX Runtime dynamic int8"] = distill.load(folder / "onnx-qat")
    return models, test


def sequence_sweep(models: dict, test, lengths=(32, 64, 128)) -> dict:
    """Batch-1 latency of the transformer kinds at several sequence lengths (all tokens real),
    interleaved per length: where int8 and ONNX Runtime gain, and where they do not."""
    from distill.data import DatasetInfo
    from distill.evaluate.latency import measure_latency
    from distill.hf import TokenizedText

    out = {}
    for length in lengths:
        ids = torch.randint(1000, 20000, (8, length), generator=torch.Generator().manual_seed(0))
        encodings = {"input_ids": ids, "token_type_ids": torch.zeros_like(ids),
                     "attention_mask": torch.ones_like(ids)}
        data = TokenizedText({k: encodings[k] for k in test.encodings}, torch.zeros(8).long(),
                             DatasetInfo("synthetic", (length,), 2))
        data.trim_padding = False
        latency = measure_latency(models, data, batch_sizes=[1], threads=1, repeats=50)
        base = latency["fp32"][1]["p50"]
        out[length] = {name: {"latency_ms_p50": v[1]["p50"], "speedup": base / v[1]["p50"]}
                       for name, v in latency.items()}
    return out


def measure(models: dict, test) -> dict:
    results = distill.evaluate_models(models, test, reference="fp32", batch_sizes=[1, 32],
                                      threads=1, latency_repeats=50)
    base = results["fp32"]
    for entry in results.values():
        entry["accuracy_kept"] = entry["accuracy"] / base["accuracy"]
        entry["size_ratio"] = entry["size_bytes"] / base["size_bytes"]
        entry["speedup_b1"] = base["latency_ms_p50"] / entry["latency_ms_p50"]
        entry["speedup_b32"] = base["latency_ms_p50_b32"] / entry["latency_ms_p50_b32"]
    return results


def table(results: dict) -> str:
    out = ["| kind | accuracy | kept | size on disk | × fp32 | batch 1 (ms) | speed-up | "
           "batch 32 (ms) | speed-up |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, e in results.items():
        out.append(f"| {name} | {100 * e['accuracy']:.2f}% | {100 * e['accuracy_kept']:.1f}% | "
                   f"{e['size_bytes'] / 1024:,.0f} KiB | {e['size_ratio']:.2f} | "
                   f"{e['latency_ms_p50']:.2f} | {e['speedup_b1']:.2f}× | "
                   f"{e['latency_ms_p50_b32']:.2f} | {e['speedup_b32']:.2f}× |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["cnn", "transformer"])
    parser.add_argument("--threads", type=int, default=2, help="for training the students")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "quantization.json")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    record: dict = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    "machine": machine(1)}
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "cnn"):
            teacher_path, student_path = cnn_student(args.threads)
            models, test = kinds_for_cnn(distill.load(student_path), teacher_path, args.threads,
                                         Path(tmp) / "cnn")
            record["cnn"] = measure(models, test)
        if args.only in (None, "transformer"):
            teacher_dir, student_path = transformer_student(args.threads)
            models, test = kinds_for_transformer(student_path, teacher_dir, args.threads,
                                                 Path(tmp) / "transformer")
            record["transformer"] = measure(models, test)
            swept = ("fp32", "ONNX Runtime fp32", "ONNX Runtime dynamic int8",
                     "QAT+KD ONNX Runtime dynamic int8", "dynamic int8 (torch)")
            record["transformer_sequence_sweep"] = sequence_sweep(
                {k: models[k] for k in swept}, test)
    summary = "\n\n".join(f"{k}\n{table(record[k])}" for k in ("cnn", "transformer")
                          if k in record)
    for length, row in record.get("transformer_sequence_sweep", {}).items():
        summary += f"\n{length} tokens: " + ", ".join(
            f"{k} {v['latency_ms_p50']:.2f} ms ({v['speedup']:.2f}x)" for k, v in row.items())
    write_record(record, args.out, started, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
