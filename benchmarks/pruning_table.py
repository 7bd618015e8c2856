"""The table both pruning benchmarks print: size, zeros, accuracy before and after recovery,
speed-ups against the unpruned model (latency measured side by side). Recovered accuracy is
mean ± std with the number of seeds in brackets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jobs import finished, mean_std

from distill.evaluate.size import count_parameters
from distill.prune import overall_sparsity


def logged(log: Path, **same: Any) -> list[tuple[dict, dict]]:
    """Every job of ``log`` run with the settings ``same`` (teacher, epochs, ...): the table
    reports all seeds and methods recovered so far, not only those of this invocation."""
    out = []
    for key, result in finished(log).items():
        job = json.loads(key)
        if all(job.get(k) == v for k, v in same.items()):
            out.append((job, result))
    return out


def summarise(at_once: dict[str, dict], models: dict[str, Any], done: list[tuple[dict, dict]],
              batch: int) -> tuple[dict[str, dict], str]:
    """Rows per model (the first is the unpruned reference) and their markdown table."""
    rows = {}
    for name, entry in at_once.items():
        row = {"params": count_parameters(models[name]),
               "sparsity": overall_sparsity(models[name]),
               "accuracy_pruned": entry["accuracy"], "latency_ms_b1": entry["latency_ms_p50"],
               f"latency_ms_b{batch}": entry[f"latency_ms_p50_b{batch}"]}
        for recover in ("distill", "finetune"):
            mine = [r["accuracy"] for j, r in done
                    if j["method"] == name and j["recover"] == recover]
            if mine:
                row[f"recovered_{recover}"] = {**mean_std(mine), "seeds": len(mine)}
        rows[name] = row
    reference = next(iter(rows.values()))
    for row in rows.values():
        for b in (1, batch):
            row[f"speedup_b{b}"] = reference[f"latency_ms_b{b}"] / row[f"latency_ms_b{b}"]
    table = ["| model | parameters | zero weights | accuracy, pruned | recovered by distillation "
             f"| recovered by fine-tuning | speed-up b1 | speed-up b{batch} |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, row in rows.items():
        rec = [f"{100 * row[k]['mean']:.2f} ± {100 * row[k]['std']:.2f}% ({row[k]['seeds']})"
               if k in row else "–"
               for k in ("recovered_distill", "recovered_finetune")]
        table.append(f"| {name} | {row['params']:,} | {100 * row['sparsity']:.0f}% | "
                     f"{100 * row['accuracy_pruned']:.2f}% | {rec[0]} | {rec[1]} | "
                     f"{row['speedup_b1']:.2f}× | {row[f'speedup_b{batch}']:.2f}× |")
    return rows, "\n".join(table)
