"""Subprocess used by test_store_crash.py: write one version, optionally dying mid-way.

    python crash_writer.py ROOT SEED POINT [GO_FILE]

POINT names the step at which the process SIGKILLs itself (no cleanup handlers run,
exactly like an OOM kill or a power cut for the process): ``none``, ``part`` (inside
the second Parquet row group write), ``index`` (index build), ``manifest`` (writing
manifest.json), ``publish`` (just before the rename into place), ``current`` (after the
rename, before CURRENT is replaced). With GO_FILE it waits for that file first, so two
writers can be started together.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from store_helpers import make_data

from embeddings_store import (
    EmbeddingStore,
    IndexConfig,
    ManifestInput,
    Producer,
    WriteOptions,
    layout,
    parts,
)
from embeddings_store import index as index_mod

N, DIM = 3_000, 16


def die(*_: Any, **__: Any) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def arm(point: str) -> None:
    if point == "part":
        original = parts.PartWriter._write_group
        calls: list[int] = []

        def second_group_dies(self: parts.PartWriter, ids: Any, vectors: Any) -> None:
            calls.append(1)
            if len(calls) == 2:
                die()
            original(self, ids, vectors)

        parts.PartWriter._write_group = second_group_dies  # type: ignore[method-assign]
    elif point == "index":
        index_mod.build_index = die  # type: ignore[assignment]
    elif point == "manifest":
        layout.atomic_write_text = die  # type: ignore[assignment]
    elif point == "publish":
        layout.publish_version = die  # type: ignore[assignment]
    elif point == "current":
        real_replace = os.replace

        def replace_dies_on_current(src: Any, dst: Any) -> None:
            if Path(dst).name == layout.CURRENT:  # temp CURRENT written, not yet in place
                die()
            real_replace(src, dst)

        os.replace = replace_dies_on_current  # type: ignore[assignment]
    elif point != "none":
        raise SystemExit(f"unknown point {point}")


def main() -> None:
    root, seed, point = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if len(sys.argv) > 4:
        while not os.path.exists(sys.argv[4]):
            time.sleep(0.01)
    arm(point)
    ids, x = make_data(N, DIM, seed=seed)
    info = ManifestInput(
        dataset_fingerprint="fp", producer=Producer(generator="crash_writer"), metric="l2"
    )
    opts = WriteOptions(row_group_bytes=(DIM * 4 + 8) * 500, part_bytes=(DIM * 4 + 8) * 1_000)
    chunks = ((ids[a : a + 400], x[a : a + 400]) for a in range(0, N, 400))
    ref = EmbeddingStore(root).write_chunks(
        "ds",
        "items/crash",
        chunks,
        DIM,
        info,
        index=IndexConfig(type="ivf_flat", nlist=16),
        options=opts,
    )
    print(ref.version, flush=True)


if __name__ == "__main__":
    main()
