"""Limits and checks every setting shares, whether it comes from Python or from a recipe.

A recipe is untrusted text, and a Python caller can pass anything: a value that validates must
be one a run can use, or the run fails late (a seed numpy refuses, after the teacher trained) or
with an error that names no field (a NUL byte reaching ``open``).
"""

from __future__ import annotations

import os
from typing import Annotated

from pydantic import AfterValidator, Field

MAX_COUNT = 2**31 - 1
"""Any count (epochs, batch size, widths, repeats, k, ...): int32, what torch, numpy and the C
libraries under them index with; epochs × steps per epoch then still fits int64."""
MAX_THREADS = 1024
"""More threads than any CPU has cores: torch would start them all, and only slow down."""
SEED_LIMIT = 2**32
"""Seeds are 0 ≤ seed < 2**32, what both halves of ``runtime.seed_everything`` take as given:
numpy's legacy seeding stops there (a bigger seed is folded onto a smaller one's stream) and
torch's at 2**64 (10**23 failed there, after the teacher had trained); self-distillation's
``seed + generation`` stays inside it."""
NAME_MAX = 255
"""Bytes in one path component (Linux's NAME_MAX, and most other file systems')."""
PATH_MAX = 4095
"""Bytes in a whole path (Linux's PATH_MAX of 4096 counts the final NUL)."""
MAX_NESTING = 32
"""Tables and arrays within each other; a recipe needs about 6."""

Count = Annotated[int, Field(ge=1, le=MAX_COUNT)]
NonNegativeCount = Annotated[int, Field(ge=0, le=MAX_COUNT)]
Threads = Annotated[int, Field(ge=1, le=MAX_THREADS)]
Seed = Annotated[int, Field(ge=0, lt=SEED_LIMIT)]
Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]


def check_path_text(text: str) -> str:
    """Refuse what no file system takes: NUL bytes, unencodable text, over-long names."""
    if "\0" in text:
        raise ValueError("contains a NUL byte, which no file or model name can hold")
    try:
        raw = os.fsencode(text)
    except UnicodeEncodeError as err:
        raise ValueError(f"cannot be written as a file name ({err.reason})") from None
    if len(raw) > PATH_MAX:
        raise ValueError(f"is {len(raw)} bytes long; a path holds at most {PATH_MAX}")
    longest = max(raw.split(b"/"), key=len)
    if len(longest) > NAME_MAX:
        raise ValueError(f"has a {len(longest)}-byte component; a file name holds at most "
                         f"{NAME_MAX} bytes")
    return text


def check_device(text: str) -> str:
    """What ``torch.device`` parses (the engine's first step), checked before any training."""
    import torch

    try:
        torch.device(check_path_text(text))
    except RuntimeError:
        raise ValueError("is not a torch device, e.g. 'cpu', 'cuda' or 'cuda:1'") from None
    return text


Device = Annotated[str, AfterValidator(check_device)]
