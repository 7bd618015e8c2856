"""A plan on disk: plan.json (everything measured), recommended.toml (runnable), report.html."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distill import atomic
from distill.plan.candidates import Candidate, candidate_recipe, recipe_toml
from distill.recipes.schema import Recipe


def table(result: dict[str, Any]) -> str:
    """The finalists as markdown, frontier and recommendation marked."""
    onnx = result.get("teacher_onnx_fp32") is not None
    rows = [f"Batch-1 latency on {result.get('cpu', 'this CPU')}, "
            f"{result.get('threads', 1)} thread(s); speed-ups over the teacher in PyTorch fp32"
            + (" and in ONNX Runtime fp32" if onnx else "") + ".", "",
            "| plan | accuracy | retention | latency p50 | speed-up |"
            + (" vs ONNX teacher |" if onnx else "") + " size | frontier |",
            "|---|---:|---:|---:|---:|" + ("---:|" if onnx else "") + "---:|:---:|"]
    for r in sorted(result["finalists"], key=lambda r: r["latency_ms_p50"]):
        mark = "**" if r["name"] == result["recommended"] else ""
        versus = (f" {r['speedup_vs_onnx_teacher']:.2f}× |"
                  if onnx and r.get("speedup_vs_onnx_teacher") else " – |" if onnx else "")
        rows.append(f"| {mark}{r['name']}{mark} | {100 * r['accuracy']:.2f}% | "
                    f"{100 * r['retention']:.2f}% | {r['latency_ms_p50']:.3f} ms | "
                    f"{r['speedup']:.2f}× |{versus} {r['size_bytes'] / 1e3:,.1f} kB | "
                    f"{'●' if r['name'] in result['frontier'] else ''} |")
    return "\n".join(rows)


def write_plan(result: dict[str, Any], recipe: Recipe, out: str | Path) -> Path:
    """Write the plan folder; the recommended recipe only when a plan met the budget."""
    from distill.report.plan_page import render_plan_html

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "recommended.toml").unlink(missing_ok=True)  # never a stale recommendation
    best = next((r for r in result["finalists"] if r["name"] == result["recommended"]), None)
    if best is not None:
        candidate = Candidate(best["width"], best["student"], best["deploy"], best["stages"],
                              best.get("prune", 0.0), best.get("heads", 0.0), best.get("label"))
        header = (f"Recommended by `distill plan` for {recipe.name or 'this recipe'}: "
                  f"{best['name']}.\nMeasured: accuracy {100 * best['accuracy']:.2f}%, "
                  f"retention {100 * best['retention']:.2f}%, batch-1 latency "
                  f"{best['latency_ms_p50']:.3f} ms ({best['speedup']:.2f}x the teacher), "
                  f"{best['size_bytes'] / 1e3:,.1f} kB.\nBudget: "
                  f"{result['budget']['max_latency_ms']:.3f} ms. Run: distill run THIS_FILE")
        atomic.write_text(out / "recommended.toml",
                          recipe_toml(candidate_recipe(recipe, candidate), header))
    atomic.write_text(out / "report.html", render_plan_html(result))
    atomic.write_json(out / "plan.json", result)
    return out
