"""What the CPU that measured a latency can do, said beside every speed-up.

A ratio measured here holds on another CPU only if it has the same instruction sets: int8
matrix products run about twice as fast with VNNI (AVX-512 VNNI or AVX-VNNI) or AMX as with
plain AVX2, and bf16 needs AVX-512 BF16 or AMX to pay. So a latency table names them.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

# /proc/cpuinfo flag -> the name people know; in the order a reader scans for them
X86_FEATURES = {
    "avx2": "AVX2", "fma": "FMA", "avx512f": "AVX-512", "avx512_vnni": "AVX-512 VNNI",
    "avx_vnni": "AVX-VNNI", "avx512_bf16": "AVX-512 BF16", "amx_int8": "AMX-INT8",
    "amx_bf16": "AMX-BF16",
}
ARM_FEATURES = {"asimd": "NEON", "asimddp": "dot product", "i8mm": "I8MM", "bf16": "BF16",
                "sve": "SVE"}
# what a reader of an int8 or bf16 speed-up most needs to know is absent
KEY_ABSENT = {"x86": ("AVX-512", "AVX-512 VNNI", "AVX-VNNI", "AMX-INT8"),
              "arm": ("dot product", "I8MM", "SVE")}


def _cpuinfo(path: Path = Path("/proc/cpuinfo")) -> dict[str, str]:
    """The first processor's fields (Linux); empty elsewhere."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_features(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, Any]:
    """The CPU's model, logical CPU count, the instruction sets that decide int8/bf16 speed
    (present and absent), and the kernels PyTorch picked (``torch.backends.cpu``)."""
    import torch

    fields = _cpuinfo(cpuinfo)
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    arm = "Features" in fields or platform.machine().lower() in ("aarch64", "arm64")
    table = ARM_FEATURES if arm else X86_FEATURES
    present = [name for flag, name in table.items() if flag in flags]
    model = (fields.get("model name") or fields.get("Model") or platform.processor()
             or platform.machine())
    return {
        "model": model,
        "logical_cpus": os.cpu_count(),
        "features": present,
        "absent": [n for n in KEY_ABSENT["arm" if arm else "x86"] if n not in present]
        if flags else [],
        "known": bool(flags),
        "torch_kernels": torch.backends.cpu.get_cpu_capability(),
    }


def describe_cpu(features: dict[str, Any] | None = None) -> str:
    """One line for a latency table: ``AMD EPYC, 2 logical CPUs: AVX2, FMA (no AVX-512, ...)``."""
    f = features if features is not None else cpu_features()
    if not f.get("known"):
        return f"{f['model']}, {f['logical_cpus']} logical CPUs (instruction sets unknown)"
    absent = f" (no {', '.join(f['absent'])})" if f["absent"] else ""
    return (f"{f['model']}, {f['logical_cpus']} logical CPUs: "
            f"{', '.join(f['features']) or 'none of ' + ', '.join(X86_FEATURES.values())}"
            f"{absent}")
