"""Reading a version's vectors: whole (zero-copy where possible) or streamed in chunks.

Vectors are stored as ``fixed_size_list<float32>[D]``, whose flattened child array is one
contiguous float buffer, so a row group becomes a ``[rows, D]`` numpy view without
copying. A whole-set read returns that view when the version is one row group, and
otherwise fills one preallocated matrix row group by row group (peak = result + one row
group), instead of concatenating Arrow chunks (peak = 2 x result).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from embeddings_store.errors import StoreError
from embeddings_store.manifest import Manifest

DEFAULT_CHUNK_BYTES = 64 << 20


def _row_bytes(dim: int) -> int:
    return dim * 4 + 8


def _wrap(path: Path, e: Exception) -> StoreError:
    return StoreError(f"{path}: unreadable or truncated Parquet file ({type(e).__name__}: {e})")


def sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


# (path, size, mtime_ns) -> sha256 already checked in this process: a version read twice
# (ids, then vectors) is hashed once; a file changed since has another key.
_VERIFIED: dict[tuple[str, int, int], str] = {}


def verify_checksum(path: Path, expected: str) -> None:
    """Refuse a part whose bytes are not the ones the manifest recorded (bit rot, an edit
    in place): whole-file sha256, ~1.5 GB/s on one core (1M × 64 float32 ≈ 0.2 s)."""
    st = os.stat(path)
    key = (str(path), st.st_size, st.st_mtime_ns)
    if _VERIFIED.get(key) == expected:
        return
    actual = sha256_file(path)
    if actual != expected:
        raise StoreError(f"{path}: sha256 {actual[:12]}… differs from the manifest's "
                         f"{expected[:12]}… (the file changed after it was written); this "
                         "version cannot be trusted: regenerate it (`llm4srs store verify` lists others)")
    _VERIFIED[key] = expected


def open_part(
    path: Path, dim: int, rows: int | None = None, size: int | None = None,
    sha256: str | None = None,
) -> pq.ParquetFile:
    """Open one part and check it against what the manifest says (size, schema, rows)."""
    try:
        actual = os.stat(path).st_size
    except FileNotFoundError as e:
        raise StoreError(f"{path}: vectors file missing") from e
    if size is not None and actual != size:
        raise StoreError(
            f"{path}: size {actual} bytes, manifest says {size} (truncated or modified)"
        )
    if sha256 is not None:
        verify_checksum(path, sha256)
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as e:
        raise _wrap(path, e) from e
    schema = pf.schema_arrow
    if schema.names[:2] != ["id", "vector"] or schema.field("id").type != pa.int64():
        raise StoreError(f"{path}: expected columns id:int64, vector:fixed_size_list<float32>")
    vtype = schema.field("vector").type
    if not (
        pa.types.is_fixed_size_list(vtype)
        and vtype.value_type == pa.float32()
        and vtype.list_size == dim
    ):
        raise StoreError(f"{path}: vector column is {vtype}, manifest dim is {dim}")
    if rows is not None and pf.metadata.num_rows != rows:
        raise StoreError(f"{path}: {pf.metadata.num_rows} rows, manifest says {rows}")
    return pf


def _to_numpy(
    path: Path, ids: pa.Array, vectors: pa.Array, dim: int
) -> tuple[np.ndarray, np.ndarray]:
    """Arrow columns → (ids [n] int64, vectors [n, dim] float32), zero-copy views."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    if isinstance(vectors, pa.ChunkedArray):
        vectors = vectors.combine_chunks()
    if ids.null_count or vectors.null_count:
        raise StoreError(f"{path}: null ids or vectors in the file")
    n = len(vectors)
    # The flattened child holds n*dim floats starting at offset*dim: slicing is zero-copy.
    flat = vectors.values.slice(vectors.offset * dim, n * dim)
    if flat.null_count:
        raise StoreError(f"{path}: null values inside vectors")
    vec = flat.to_numpy(zero_copy_only=True).reshape(n, dim)  # [n, D]
    return ids.to_numpy(zero_copy_only=True), vec


def _parts(vdir: Path, manifest: Manifest) -> list[tuple[Path, int, int | None, str | None]]:
    """(path, rows, size, sha256) of each part, as the manifest recorded them."""
    out = []
    for part in manifest.parts:
        info = manifest.files.get(part.file)
        out.append((vdir / part.file, part.rows, info.size if info else None,
                    info.sha256 if info else None))
    return out


def read_version(vdir: Path, manifest: Manifest) -> tuple[np.ndarray, np.ndarray]:
    """All rows: (ids [N] int64, vectors [N, D] float32), both read-only."""
    dim, count = manifest.dim, manifest.count
    files = [(open_part(p, dim, rows, size, sha), p) for p, rows, size, sha in _parts(vdir, manifest)]
    groups = sum(pf.metadata.num_row_groups for pf, _ in files)
    if groups == 1:
        pf, path = files[0]
        try:
            table = pf.read_row_group(0, columns=["id", "vector"])
        except (pa.ArrowException, OSError) as e:
            raise _wrap(path, e) from e
        ids, vec = _to_numpy(path, table.column("id"), table.column("vector"), dim)
        return ids, vec
    out_ids = np.empty(count, dtype=np.int64)  # [N]
    out_vec = np.empty((count, dim), dtype=np.float32)  # [N, D]
    row = 0
    for pf, path in files:
        for g in range(pf.metadata.num_row_groups):
            try:
                table = pf.read_row_group(g, columns=["id", "vector"])
            except (pa.ArrowException, OSError) as e:
                raise _wrap(path, e) from e
            ids, vec = _to_numpy(path, table.column("id"), table.column("vector"), dim)
            if row + len(ids) > count:
                raise StoreError(f"{path}: more rows than the manifest count {count}")
            out_ids[row : row + len(ids)] = ids
            out_vec[row : row + len(ids)] = vec
            row += len(ids)
            del table, ids, vec
    if row != count:
        raise StoreError(f"{vdir}: read {row} rows, manifest count is {count}")
    out_ids.setflags(write=False)
    out_vec.setflags(write=False)
    return out_ids, out_vec


def iter_files(
    paths: list[tuple[Path, int | None, int | None]] | list[tuple[Path, int | None, int | None, str | None]],
    dim: int, max_bytes: int = DEFAULT_CHUNK_BYTES,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Stream (ids [n], vectors [n, D]) with n*row_bytes <= max_bytes.

    Arrow decodes one row group at a time, so the real peak is about
    max(max_bytes, row group size) -- the writer keeps row groups at 128 MiB.
    """
    batch = max(1, max_bytes // _row_bytes(dim))
    for path, rows, size, *sha in paths:  # (path, rows, size[, sha256])
        pf = open_part(path, dim, rows, size, sha[0] if sha else None)
        try:
            for rb in pf.iter_batches(batch_size=batch, columns=["id", "vector"]):
                yield _to_numpy(path, rb.column(0), rb.column(1), dim)
        except (pa.ArrowException, OSError) as e:
            raise _wrap(path, e) from e


def iter_version(
    vdir: Path, manifest: Manifest, max_bytes: int = DEFAULT_CHUNK_BYTES
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    yield from iter_files(_parts(vdir, manifest), manifest.dim, max_bytes)


def read_ids(vdir: Path, manifest: Manifest) -> np.ndarray:
    """Only the id column, [N] int64 (cheap: vectors are not decoded)."""
    out = []
    for path, rows, size, sha in _parts(vdir, manifest):
        pf = open_part(path, manifest.dim, rows, size, sha)
        try:
            out.append(pf.read(columns=["id"]).column("id").to_numpy())
        except (pa.ArrowException, OSError) as e:
            raise _wrap(path, e) from e
    return np.concatenate(out) if out else np.empty(0, dtype=np.int64)


class IdMap:
    """ids ↔ row positions, vectorised; unknown ids map to row -1 (and row -1 to id -1)."""

    def __init__(self, ids: np.ndarray) -> None:
        self.ids = np.asarray(ids, dtype=np.int64)  # [N], row i holds id ids[i]
        self._order = np.argsort(self.ids, kind="stable")  # [N]
        self._sorted = self.ids[self._order]  # [N]

    def __len__(self) -> int:
        return len(self.ids)

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Row of each id, same shape, int64; -1 where the id is not in the version."""
        q = np.asarray(ids, dtype=np.int64)
        if not len(self.ids):
            return np.full(q.shape, -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self._sorted, q), len(self._sorted) - 1)
        return np.where(self._sorted[pos] == q, self._order[pos], -1).astype(np.int64)

    def ids_of(self, rows: np.ndarray) -> np.ndarray:
        """Id at each row, same shape; -1 rows (FAISS "no result") stay -1."""
        r = np.asarray(rows, dtype=np.int64)
        if np.any((r < -1) | (r >= len(self.ids))):
            raise StoreError(f"row out of range -1..{len(self.ids) - 1}")
        if not len(self.ids):
            return np.full(r.shape, -1, dtype=np.int64)
        return np.where(r >= 0, self.ids[np.maximum(r, 0)], -1).astype(np.int64)
