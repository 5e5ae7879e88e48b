"""Parquet part files of one version: fixed-size row groups, rolled over into parts.

Row groups are sized in bytes (STYLE.md: 64-256 MB, not pyarrow's default of a million
rows, which at 576 dims would be 2.3 GB), so readers can stream a version within a
memory budget; a very large set is split into several part files of ~1 GiB each, which
is also what lets sharded producers write parts independently later.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from embeddings_store.errors import StoreError
from embeddings_store.manifest import PartInfo


@dataclass(frozen=True)
class WriteOptions:
    """Physical layout knobs; defaults follow STYLE.md (row groups of 64-256 MB)."""

    row_group_bytes: int = 128 << 20
    part_bytes: int = 1 << 30
    compression: str = "zstd"
    compression_level: int = 1

    def __post_init__(self) -> None:
        if self.row_group_bytes <= 0 or self.part_bytes <= 0:
            raise StoreError("row_group_bytes and part_bytes must be positive")


def vector_schema(dim: int) -> pa.Schema:
    return pa.schema(
        [
            pa.field("id", pa.int64(), nullable=False),
            pa.field(
                "vector",
                pa.list_(pa.field("element", pa.float32(), nullable=False), dim),
                nullable=False,
            ),
        ]
    )


class PartWriter:
    """Buffers rows into fixed-size row groups and rolls over to a new part file when full."""

    def __init__(self, folder: Path, dim: int, opts: WriteOptions) -> None:
        self.folder, self.dim, self.opts = folder, dim, opts
        self.schema = vector_schema(dim)
        row_bytes = dim * 4 + 8
        self.group_rows = max(1, opts.row_group_bytes // row_bytes)
        self.part_rows = max(1, opts.part_bytes // (row_bytes * self.group_rows)) * self.group_rows
        self.pending: list[tuple[np.ndarray, np.ndarray]] = []
        self.pending_rows = 0
        self.parts: list[PartInfo] = []
        self.writer: pq.ParquetWriter | None = None

    def write(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if not len(ids):
            return
        self.pending.append((ids, vectors))
        self.pending_rows += len(ids)
        while self.pending_rows >= self.group_rows:
            self._write_group(*self._take(self.group_rows))
        if self.pending:
            # What is left of this call's chunk is always last: copy it, because streaming
            # producers often reuse their buffers for the next chunk.
            self.pending[-1] = (self.pending[-1][0].copy(), self.pending[-1][1].copy())

    def _take(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Pop the first ``n`` pending rows; views when one piece suffices, else a concat."""
        ids0, vec0 = self.pending[0]
        if len(ids0) >= n:
            self.pending[0] = (ids0[n:], vec0[n:])
            if not len(self.pending[0][0]):
                self.pending.pop(0)
            self.pending_rows -= n
            return ids0[:n], vec0[:n]
        got_ids, got_vec, need = [], [], n
        while need:
            ids, vec = self._take(min(need, len(self.pending[0][0])))
            got_ids.append(ids)
            got_vec.append(vec)
            need -= len(ids)
        return np.concatenate(got_ids), np.concatenate(got_vec)

    def _write_group(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """One row group, [n] ids and [n, D] vectors; opens the next part when needed."""
        if self.writer is None or self.parts[-1].rows >= self.part_rows:
            self._close_part()
            name = f"vectors-{len(self.parts):05d}.parquet"
            self.writer = pq.ParquetWriter(
                self.folder / name,
                self.schema,
                compression=self.opts.compression,
                compression_level=self.opts.compression_level
                if self.opts.compression != "none"
                else None,
                use_dictionary=False,
                # Splitting float bytes into streams makes them compress (~15% smaller).
                column_encoding={"id": "PLAIN", "vector.list.element": "BYTE_STREAM_SPLIT"},
                write_statistics=["id"],
            )
            self.parts.append(PartInfo(file=name, rows=0))
        flat = pa.array(np.ascontiguousarray(vectors).reshape(-1), type=pa.float32())
        table = pa.Table.from_arrays(
            [
                pa.array(ids, type=pa.int64()),
                pa.FixedSizeListArray.from_arrays(flat, type=self.schema.field("vector").type),
            ],
            schema=self.schema,
        )
        self.writer.write_table(table, row_group_size=len(ids))
        self.parts[-1] = PartInfo(file=self.parts[-1].file, rows=self.parts[-1].rows + len(ids))

    def _close_part(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def close(self) -> list[PartInfo]:
        if self.pending_rows:
            self._write_group(*self._take(self.pending_rows))
        self._close_part()
        if len(self.parts) == 1:
            os.rename(self.folder / self.parts[0].file, self.folder / "vectors.parquet")
            self.parts = [PartInfo(file="vectors.parquet", rows=self.parts[0].rows)]
        return self.parts

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._close_part()
