"""Resumable benchmark jobs: run side by side, one torch thread each, recorded as they finish.

Each finished job is appended to a JSON-lines log keyed by its settings, so a benchmark that is
interrupted (or extended with more seeds) redoes only what is missing.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch

from distill import atomic


def job_key(job: dict[str, Any]) -> str:
    return json.dumps(job, sort_keys=True)


def finished(log: Path) -> dict[str, dict[str, Any]]:
    """Results recorded by earlier runs; a torn last line is skipped."""
    done: dict[str, dict[str, Any]] = {}
    if log.is_file():
        for line in log.read_text().splitlines():
            try:
                entry = json.loads(line)
                done[entry["key"]] = entry["result"]
            except (ValueError, KeyError, TypeError):
                continue
    return done


def run_jobs(
    fn: Callable[[dict[str, Any]], dict[str, Any]],
    jobs: list[dict[str, Any]],
    log: Path,
    processes: int,
    threads: int = 1,
) -> list[dict[str, Any]]:
    """``fn(job)`` for every job not yet in ``log``; results in the order of ``jobs``.

    Each process runs torch with ``threads`` threads (1 by default: side-by-side jobs with more
    would oversubscribe the cores); a job that runs alone may take them all."""
    log.parent.mkdir(parents=True, exist_ok=True)
    done = finished(log)
    todo = [job for job in jobs if job_key(job) not in done]
    print(f"{len(jobs)} jobs ({len(jobs) - len(todo)} done earlier) on {processes} processes",
          flush=True)
    if todo:
        with ProcessPoolExecutor(processes, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(_with_threads, threads, fn, job): job for job in todo}
            for future in as_completed(futures):
                job, result = futures[future], future.result()
                done[job_key(job)] = result
                with log.open("a") as f:
                    f.write(json.dumps({"key": job_key(job), "result": result}) + "\n")
                print(f"{job} -> {_short(result)}", flush=True)
    return [done[job_key(job)] for job in jobs]


def _with_threads(threads, fn, job):
    torch.set_num_threads(threads)
    started = time.perf_counter()
    result = fn(job)
    result.setdefault("seconds", time.perf_counter() - started)
    return result


def _short(result: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in result.items() if not isinstance(v, list | dict))


def machine(processes: int, threads: int = 1) -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "threads_per_job": threads, "jobs": processes, "torch": torch.__version__}


def mean_std(values: list[float]) -> dict[str, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    return {"mean": statistics.mean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def write_record(record: dict[str, Any], out: Path, started: float, summary: str) -> None:
    """Stamp the wall time, write ``out`` atomically, print ``summary``."""
    record["wall_seconds"] = time.perf_counter() - started
    record["command"] = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    atomic.write_json(out, record)
    print(summary)
    print(f"wrote {out}")


def peak_reset() -> None:
    """Reset this process's resident-memory high-water mark to what is resident now."""
    Path("/proc/self/clear_refs").write_text("5")


def resident_mib(field: str = "VmHWM") -> float:
    """``VmHWM`` (the high-water mark since :func:`peak_reset`) or ``VmRSS``, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed_steps(step: Callable[[], None], repeats: int,
                cpu: list[float] | None = None) -> tuple[list[float], list[float]]:
    """Seconds and peak MiB above the resident baseline of each of ``repeats`` calls of
    ``step`` (after one untimed warm-up call: lazy initialisation, allocator pools).

    ``cpu``, when given, receives each call's CPU seconds (this process, user and system): for
    a one-thread step, what it costs even while other work shares the cores and stretches
    its wall time."""
    step()
    seconds, peaks = [], []
    for _ in range(repeats):
        peak_reset()
        baseline = resident_mib("VmRSS")
        started, started_cpu = time.perf_counter(), time.process_time()
        step()
        seconds.append(time.perf_counter() - started)
        if cpu is not None:
            cpu.append(time.process_time() - started_cpu)
        peaks.append(resident_mib() - baseline)
    return seconds, peaks
