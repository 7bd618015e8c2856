"""``report.md``: the run's numbers in one table, its plots, and how to reproduce it."""

from __future__ import annotations

from typing import Any

from distill.report.formatting import (
    findings,
    latency_note,
    machine_line,
    pct_ci,
    retention_text,
    warnings_of,
)
from distill.report.formatting import num as _num
from distill.report.formatting import pct as _pct
from distill.report.formatting import size as _size

ROWS = ("teacher", "baseline", "student")


def _largest_batch(metrics: dict[str, Any]) -> int | None:
    sizes = [int(k.rsplit("_b", 1)[1]) for k in metrics["student"]
             if k.startswith("latency_ms_p50_b")]
    return max(sizes) if sizes else None


def summary_table(metrics: dict[str, Any]) -> str:
    """One row per model; classifier columns, or agreement columns for sentence embeddings."""
    big = _largest_batch(metrics)
    embedding = metrics.get("task") == "sentence-embedding"
    lm = metrics.get("task") == "causal-lm"
    quality = (["cosine to teacher", "10-NN overlap"] if embedding
               else ["perplexity", "KL to teacher (per token)", "top-1 agreement"] if lm
               else ["accuracy (95% interval)", "agreement", "KL to teacher", "ECE"])
    columns = ["model", *quality, "params", "size", "latency p50 (b1)", "p95 (b1)"]
    columns += [f"p50 (b{big})"] if big else []
    rows = ["| " + " | ".join(columns) + " |", "|---" + "|---:" * (len(columns) - 1) + "|"]
    named = [("teacher", metrics.get("teacher"))]
    named += [(f"stage {i}: {st['name']}", st) for i, st in enumerate(metrics.get("stages", []))]
    named += [(name, metrics.get(name)) for name in ROWS[1:]]
    for name, e in named:
        if not e:
            continue
        if embedding:
            cells = [_num(e.get("cosine")), _pct(e.get("neighbour_overlap@10"))]
        elif lm:
            cells = [_num(e.get("perplexity"), "{:.2f}"), _num(e.get("kl_to_teacher")),
                     _pct(e.get("agreement"))]
        else:
            cells = [pct_ci(e.get("accuracy"), e.get("accuracy_ci95")), _pct(e.get("agreement")),
                     _num(e.get("kl_to_teacher")), _num(e.get("ece"))]
        cells += [f"{e['params']:,}", _size(e["size_bytes"]), f"{_num(e['latency_ms_p50'])} ms",
                  f"{_num(e['latency_ms_p95'])} ms"]
        if big:
            cells.append(f"{_num(e.get(f'latency_ms_p50_b{big}'))} ms")
        rows.append("| " + " | ".join([name, *cells]) + " |")
    return "\n".join(rows) + "\n"


def _headline(metrics: dict[str, Any]) -> list[str]:
    if metrics.get("task") == "causal-lm":
        t, s = metrics["teacher"], metrics["student"]
        line = [f"- **Retention** (teacher / student perplexity on held-out text, per token): "
                f"{_pct(metrics.get('retention'))} ({_num(t.get('perplexity'), '{:.2f}')} "
                f"against {_num(s.get('perplexity'), '{:.2f}')})"]
        cut = metrics.get("student_before_recovery")
        if cut:
            line.append(f"- The student as cut from the teacher, before recovery: perplexity "
                        f"{_num(cut.get('perplexity'), '{:.2f}')} ({cut.get('blocks')} blocks, "
                        f"MLP width {cut.get('intermediate_size')}, {cut.get('params'):,} "
                        "parameters)")
        for kind, entry in (metrics.get("gguf") or {}).items():
            scored = (f"perplexity {_num(entry.get('perplexity'), '{:.2f}')} against the "
                      f"student's {_num(entry.get('student_perplexity'), '{:.2f}')} on the same "
                      "held-out blocks, and its " if entry.get("perplexity") is not None else "")
            line.append(f"- Shipped for llama.cpp as `{entry['file']}` ({kind}, "
                        f"{entry['bytes'] / 2**20:.1f} MiB): read back by transformers, "
                        f"{scored}top-1 next token matches the student's at "
                        f"{_pct(entry.get('top1_agreement'))} of held-out positions")
        general = metrics.get("teacher_before_finetune")
        if general:
            line.append(f"- The teacher before fine-tuning on this text: perplexity "
                        f"{_num(general.get('perplexity'), '{:.2f}')} (the student's "
                        f"{_num(s.get('perplexity'), '{:.2f}')})")
        if metrics.get("baseline"):
            line.append(f"- The baseline (the same student on the text alone) keeps "
                        f"{_pct(metrics.get('baseline_retention'))} (perplexity "
                        f"{_num(metrics['baseline'].get('perplexity'), '{:.2f}')})")
        return line
    if metrics.get("task") != "sentence-embedding":
        return [f"- **Retention** (student / teacher accuracy): {retention_text(metrics)}"]
    before = metrics.get("student_before_distillation", {})
    return [
        "- **Agreement with the teacher** on held-out text: cosine "
        f"{_num(metrics['student'].get('cosine'))} (before distillation "
        f"{_num(before.get('cosine'))}); share of each sentence's 10 nearest neighbours the "
        f"two agree on {_pct(metrics['student'].get('neighbour_overlap@10'))} (before "
        f"{_pct(before.get('neighbour_overlap@10'))})",
    ]


def _generations(metrics: dict[str, Any]) -> list[str]:
    """Greedy continuations of held-out openings, each model beside the others."""
    samples = metrics.get("generations") or []
    if not samples or "prompt" not in samples[0]:
        return []
    models = [k for k in samples[0] if k != "prompt"]
    rows = ["", "## Sample continuations", "",
            "Greedy continuations of the opening of held-out sequences:", "",
            "| prompt | " + " | ".join(models) + " |", "|---" * (len(models) + 1) + "|"]
    for sample in samples:
        cells = [sample[k].replace("|", "\\|").replace("\n", " ") for k in ("prompt", *models)]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def speed_rows(metrics: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(models, one row of cells per setting): decode tokens/s, its ratio to the teacher's,
    and the prompt's prefill time; shared by report.md and report.html."""
    speeds = metrics.get("generation_speed") or {}
    if "teacher" not in speeds:
        return [], []
    models = list(speeds)
    rows = []
    for key, teacher in speeds["teacher"].items():
        length, threads = key[1:].split("_t")
        cells = [f"{length} tokens, {threads} thread{'s' if threads != '1' else ''}"]
        for name in models:
            entry = speeds[name][key]
            ratio = entry["decode_tokens_per_s"] / teacher["decode_tokens_per_s"]
            cells.append(f"{entry['decode_tokens_per_s']:.1f} tokens/s ({ratio:.2f}×), "
                         f"prefill {entry['prefill_ms']:.1f} ms")
        rows.append(cells)
    return models, rows


def _speed(metrics: dict[str, Any]) -> list[str]:
    models, rows = speed_rows(metrics)
    if not rows:
        return []
    out = ["", "## Generation speed", "",
           "Batch 1, KV cache, greedy, every call generating the same number of tokens; medians "
           "of runs taken in turns (× the teacher's decode speed):", "",
           "| prompt | " + " | ".join(models) + " |", "|---" * (len(models) + 1) + "|"]
    out += ["| " + " | ".join(cells) + " |" for cells in rows]
    return out


def _pruning(metrics: dict[str, Any]) -> list[str]:
    """Zero weights per layer of a pruned student (structured pruning leaves none: it removes)."""
    pruning = metrics.get("pruning")
    if not pruning:
        return []
    rows = ["", "## Pruning", "",
            f"Zero weights in the student: {_pct(pruning['overall_sparsity'])} overall. The "
            "baseline is the same pruning recovered by fine-tuning on labels.", "",
            "| layer | weights | zeros | sparsity |", "|---|---:|---:|---:|"]
    rows += [f"| {r['name']} | {r['total']:,} | {r['zeros']:,} | {_pct(r['sparsity'])} |"
             for r in pruning["layers"]]
    return rows


def render_report(metrics: dict[str, Any], recipe_toml: str, plots: dict[str, str]) -> str:
    env = metrics.get("environment", {})
    lines = [
        f"# Distillation report: {metrics.get('name', 'run')}",
        "",
        f"Created {metrics.get('created', '?')} on {machine_line(env)}; latency measured with "
        f"{metrics['student'].get('latency_threads', '?')} thread(s); "
        f"torch {env.get('torch', '?')}.",
        "",
        *[f"> **WARNING:** {warning}\n" for warning in warnings_of(metrics)],
        "## Summary",
        "",
        summary_table(metrics),
        *_headline(metrics),
        "- **Speedup** (teacher / student latency, batch 1, p50): "
        f"{_num(metrics.get('speedup'), '{:.2f}')}×",
        "- **Compression** (teacher / student parameters): "
        f"{_num(metrics.get('compression'), '{:.1f}')}×",
    ]
    if "gap_closed" in metrics:
        lines.append(
            f"- **Gap closed** by distillation (student − baseline) / (teacher − baseline): "
            f"{_pct(metrics.get('gap_closed'))}; the baseline is the same student trained on "
            "hard labels only."
            + (f" Not reported: {metrics.get('gap_closed_note') or 'no gap to close'}."
               if metrics.get("gap_closed") is None else "")
            + (" Meaningless here: the teacher is near chance."
               if metrics.get("teacher_near_chance") and metrics.get("gap_closed") is not None
               else "")
        )
    found = findings(metrics)
    if found:
        lines += ["", "**What the differences mean** (paired 95% intervals over the same test "
                  "samples; inside the interval is noise, not a finding):", ""]
        lines += [f"- {line}" for line in found]
    note = latency_note(metrics, _largest_batch(metrics))
    if note:
        lines += ["", f"**Latency.** {note}"]
    lines += _pruning(metrics)
    lines += _speed(metrics)
    lines += _generations(metrics)
    lines += ["", "## Plots", ""]
    for title, rel in plots.items():
        lines += [f"![{title}]({rel})", ""]
    lines += [
        "## Reproduce",
        "",
        "```toml",
        recipe_toml.rstrip(),
        "```",
        "",
        "Saved student: `student/` (load with `distill.load(path)`); all numbers: `metrics.json`.",
        "",
    ]
    return "\n".join(lines)
