"""Whether the Hugging Face hub can be asked, found out in seconds.

Offline, ``from_pretrained("some/id")`` retries the network for tens of seconds before it
fails. distill asks once, quickly: when ``HF_HUB_OFFLINE`` (or ``HF_DATASETS_OFFLINE`` for
datasets) is set, or a connection to the hub's endpoint does not open within a few seconds,
a hub id is looked up in the local Hugging Face cache only, and fails at once if it is not
there, with a message that says so.
"""

from __future__ import annotations

import functools
import os
import socket
from urllib.parse import urlparse

PROBE_TIMEOUT_S = 5.0
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


def offline_variable(names: tuple[str, ...] = OFFLINE_VARIABLES) -> str | None:
    """The environment variable that puts the hub offline, if one is set."""
    for name in names:
        if os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on"):
            return name
    return None


def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co")


@functools.lru_cache(maxsize=4)
def _probe(url: str) -> str | None:
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((parsed.hostname or "", port), timeout=PROBE_TIMEOUT_S).close()
    except OSError as err:
        return f"{url} cannot be reached ({err})"
    return None


def unreachable_reason(names: tuple[str, ...] = OFFLINE_VARIABLES) -> str | None:
    """Why the hub cannot be asked (an offline variable, or a failed connection), or None.

    The probe's answer is remembered for the process: one run asks at most once."""
    variable = offline_variable(names)
    if variable is not None:
        return f"{variable} is set"
    return _probe(endpoint())
