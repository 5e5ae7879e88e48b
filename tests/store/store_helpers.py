"""Shared helpers for the store tests (a uniquely named module, so other test folders'
``conftest`` modules can never shadow it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]


def make_data(n: int, dim: int, seed: int = 0, clusters: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Non-contiguous ids 1000 + 7*i (so ids never equal row positions) and float32 [n, dim]."""
    rng = np.random.default_rng(seed)
    ids = 1000 + 7 * np.arange(n, dtype=np.int64)
    if clusters:
        centres = rng.standard_normal((clusters, dim)).astype(np.float32)
        x = centres[rng.integers(0, clusters, n)] + 0.3 * rng.standard_normal(
            (n, dim), dtype=np.float32
        )
    else:
        x = rng.standard_normal((n, dim), dtype=np.float32)
    return ids, np.ascontiguousarray(x, dtype=np.float32)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Bitwise equality (NaN-safe, -0.0 != 0.0): compare the raw 32-bit patterns."""
    return a.shape == b.shape and np.array_equal(
        np.ascontiguousarray(a).view(np.uint32), np.ascontiguousarray(b).view(np.uint32)
    )
