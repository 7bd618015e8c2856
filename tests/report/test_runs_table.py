"""`distill compare`: runs measured on different CPUs are said not to compare."""

from __future__ import annotations

import json

from distill.report.runs import runs_table


def _run(folder, name: str, cpu: str | None):
    folder.mkdir()
    environment = {"machine": "x86_64", "cpu_count": 2} | ({"cpu": cpu} if cpu else {})
    (folder / "metrics.json").write_text(json.dumps({
        "name": name, "teacher": {"accuracy": 0.9}, "retention": 0.98, "speedup": 3.0,
        "student": {"accuracy": 0.88, "params": 10, "latency_ms_p50": 0.5},
        "environment": environment}))
    return folder


def test_runs_from_two_cpus_are_flagged(tmp_path):
    a = _run(tmp_path / "a", "a", "AMD EPYC, 2 logical CPUs: AVX2, FMA (no AVX-512)")
    b = _run(tmp_path / "b", "b", "Intel Xeon, 8 logical CPUs: AVX2, FMA, AVX-512, AVX-512 VNNI")
    old = _run(tmp_path / "c", "c", None)  # recorded before the CPU was
    lines = runs_table([a, b, old]).splitlines()
    assert lines[-1].startswith("Latency measured on different machines, so their speed-ups "
                                "do not compare: AMD EPYC")
    assert "(a); Intel Xeon" in lines[-1] and "x86_64 (2 CPUs) (c)" in lines[-1]
    same = runs_table([a, a]).splitlines()
    assert same[-1] == "Latency measured on AMD EPYC, 2 logical CPUs: AVX2, FMA (no AVX-512)."
