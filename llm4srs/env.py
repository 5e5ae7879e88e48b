"""Process environment for embedded Prefect and offline model loading.

Only defaults: a variable the user already set wins. Must run before Prefect is imported.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    # The ephemeral server's 20 s default is too short on a loaded 2-core machine.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    # OpenMP's active spinning slows 2 loaded cores 2–6× (../shared/STACK.md).
    "OMP_WAIT_POLICY": "PASSIVE",
}


def configure() -> None:
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
    # Prefect's state and result cache (cloudpickle: whoever can write there runs code on
    # the next cache hit) live in one place per user, never in whatever directory the
    # command runs from. `make` sets the checkout's .prefect instead.
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    os.environ.setdefault("PREFECT_HOME", str(cache / "llm4srs" / "prefect"))
