"""Input checks run before anything reaches Parquet or FAISS.

Every check raises :class:`StoreError` with one line naming what is wrong and a few
offending ids, because "bad vector somewhere" is useless on a million-row catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from embeddings_store.errors import StoreError

NanPolicy = Literal["error", "drop"]
_SAMPLE = 5
# Checking finiteness on [rows, D] at once allocates a bool matrix; do it in blocks.
_FINITE_BLOCK_ELEMS = 1 << 24


def _sample(values: np.ndarray) -> str:
    head = ", ".join(str(int(v)) for v in values[:_SAMPLE])
    return head + (", ..." if len(values) > _SAMPLE else "")


def as_ids(ids: Any, where: str) -> np.ndarray:
    """Coerce ids to a 1-D int64 array [N]; nulls, floats and strings are refused."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    if isinstance(ids, pa.Array):
        if ids.null_count:
            raise StoreError(f"{where}: {ids.null_count} null ids")
        if not pa.types.is_integer(ids.type):
            raise StoreError(f"{where}: ids must be integers, got {ids.type}")
        ids = ids.to_numpy(zero_copy_only=False)
    if isinstance(ids, np.ma.MaskedArray):
        if np.ma.count_masked(ids):
            raise StoreError(f"{where}: {np.ma.count_masked(ids)} null ids")
        ids = ids.data
    arr = np.asarray(ids)
    if arr.dtype == object:
        nulls = sum(v is None for v in arr.ravel())
        if nulls:
            raise StoreError(f"{where}: {nulls} null ids")
        try:
            arr = arr.astype(np.int64)
        except (TypeError, ValueError) as e:
            raise StoreError(f"{where}: ids must be integers ({e})") from e
    if arr.ndim != 1:
        raise StoreError(f"{where}: ids must be 1-D, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise StoreError(f"{where}: ids must be integers, got dtype {arr.dtype}")
    if arr.dtype == np.uint64 and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise StoreError(f"{where}: ids do not fit in int64")
    return np.ascontiguousarray(arr, dtype=np.int64)


def as_vectors(vectors: Any, dim: int, where: str) -> np.ndarray:
    """Coerce to a C-contiguous float32 [N, dim] (no copy when it already is one)."""
    arr = np.asarray(vectors)
    if arr.ndim != 2:
        raise StoreError(f"{where}: vectors must be 2-D [N, D], got shape {arr.shape}")
    if arr.shape[1] != dim:
        raise StoreError(f"{where}: wrong dim {arr.shape[1]}, expected {dim}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise StoreError(f"{where}: vectors must be floating point, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def finite_rows(vectors: np.ndarray) -> np.ndarray:
    """Bool [N]: True where every value of the row is finite; bounded temporary memory."""
    n, d = vectors.shape
    ok = np.ones(n, dtype=bool)
    step = max(1, _FINITE_BLOCK_ELEMS // max(d, 1))
    for start in range(0, n, step):
        block = vectors[start : start + step]
        if not np.isfinite(block).all():
            ok[start : start + step] = np.isfinite(block).all(axis=1)
    return ok


@dataclass(frozen=True)
class CheckedChunk:
    ids: np.ndarray  # [n] int64
    vectors: np.ndarray  # [n, D] float32, C-contiguous
    dropped_ids: np.ndarray  # [m] int64, rows removed by nan_policy="drop"


def check_chunk(
    ids: Any, vectors: Any, dim: int, nan_policy: NanPolicy, normalized: bool, where: str
) -> CheckedChunk:
    """Validate one (ids, vectors) chunk: shapes, dtype, NaN/Inf policy, unit norms."""
    if nan_policy not in ("error", "drop"):
        raise StoreError(f"invalid nan_policy {nan_policy!r}: use 'error' or 'drop'")
    id_arr = as_ids(ids, where)
    vec = as_vectors(vectors, dim, where)
    if len(id_arr) != len(vec):
        raise StoreError(f"{where}: {len(id_arr)} ids but {len(vec)} vectors")
    ok = finite_rows(vec)
    dropped = np.empty(0, dtype=np.int64)
    if not ok.all():
        bad = id_arr[~ok]
        if nan_policy == "error":
            raise StoreError(
                f"{where}: {len(bad)} vectors contain NaN/Inf (ids {_sample(bad)}); "
                "fix the producer or pass nan_policy='drop'"
            )
        dropped, id_arr, vec = bad, id_arr[ok], np.ascontiguousarray(vec[ok])
    if normalized and len(vec):
        norms = np.linalg.norm(vec, axis=1)
        off = np.abs(norms - 1.0) > 1e-3
        if off.any():
            raise StoreError(
                f"{where}: manifest says normalized but {int(off.sum())} vectors have "
                f"norm != 1 (ids {_sample(id_arr[off])})"
            )
    return CheckedChunk(id_arr, vec, dropped)


def check_unique(ids: np.ndarray, where: str) -> None:
    """All ids distinct; ``ids`` is [N] int64 (sorted copy, O(N log N))."""
    if len(ids) < 2:
        return
    s = np.sort(ids)
    dup = s[1:][s[1:] == s[:-1]]
    if len(dup):
        raise StoreError(
            f"{where}: {len(np.unique(dup))} duplicate ids (ids {_sample(np.unique(dup))})"
        )


def check_coverage(ids: np.ndarray, expected: Any, where: str) -> None:
    """The written ids are exactly the catalogue ``expected`` (as sets)."""
    exp = np.unique(as_ids(expected, f"{where} expected_ids"))
    got = np.unique(ids)
    missing = np.setdiff1d(exp, got, assume_unique=True)
    extra = np.setdiff1d(got, exp, assume_unique=True)
    if len(missing) or len(extra):
        raise StoreError(
            f"{where}: ids do not cover the catalogue: {len(missing)} missing"
            f"{f' ({_sample(missing)})' if len(missing) else ''}, {len(extra)} unexpected"
            f"{f' ({_sample(extra)})' if len(extra) else ''}"
        )
