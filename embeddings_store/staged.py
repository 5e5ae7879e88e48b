"""One version written in parts by independent producers (threads, processes, machines).

A sharded producer cannot stream through one writer, so the version's temp dir is opened
first and handed out as a small picklable :class:`StagedVersion`; each producer writes its
own part into it, and the coordinator commits once every part is in::

    <kind>/.tmp-<version>-<pid>/          the version's temp dir (never listed as a version)
        .writing                          flock held by the coordinator while it stages
        vectors-00000.parquet ...         final parts, each renamed in whole (atomic)
        scratch/<name>-00000.parquet      producers' intermediate parts, never published

Commit = every part present and readable → ids unique and covering the catalogue →
optional index → checksums + manifest → rename, CURRENT last (the same sealing as a
one-process write). A producer that crashes mid-part leaves only a private ``.part-*``
dir; a rerun of the part replaces the part file; a coordinator that dies releases the
flock, and ``gc`` removes the whole temp dir. The store knows nothing of what the parts
mean: scratch parts are just more (id, vector) files.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from embeddings_store import layout
from embeddings_store.errors import StoreError
from embeddings_store.index_choice import IndexConfig
from embeddings_store.manifest import ManifestInput, PartInfo
from embeddings_store.parts import PartWriter, WriteOptions
from embeddings_store.reader import iter_files, open_part
from embeddings_store.validate import check_chunk, check_coverage, check_unique
from embeddings_store.writer import make_temp_dir, remove_empty_parents, seal_version

SCRATCH = "scratch"
PART_PREFIX = ".part-"


@dataclass(frozen=True)
class StagedVersion:
    """A handle on a staged version; plain fields so it pickles into any worker process.

    ``dim`` may be None when the producers learn it (a model's hidden size): the first part
    fixes it and commit checks every part against it.
    """

    path: str  # the version's temp dir
    dataset: str
    kind: str
    version: str
    n_parts: int
    dim: int | None = None
    normalized: bool = False

    @property
    def where(self) -> str:
        return f"{self.dataset}/{self.kind} (staged {self.version})"

    def part_path(self, part: int, scratch: str | None = None) -> Path:
        if not 0 <= part < self.n_parts:
            raise StoreError(f"{self.where}: part {part} outside 0..{self.n_parts - 1}")
        if scratch is None:
            return Path(self.path) / f"vectors-{part:05d}.parquet"
        layout.check_name(scratch, "scratch name")
        return Path(self.path) / SCRATCH / f"{scratch}-{part:05d}.parquet"

    def write_part(self, part: int, ids: Any, vectors: Any, scratch: str | None = None) -> PartInfo:
        """Validate and write part ``part`` (ids [n], vectors [n, D]); replaces an earlier
        attempt of the same part. Final parts are checked for unit norms when staged as
        normalised; scratch parts only for shape and NaN/Inf."""
        final = self.part_path(part, scratch)
        if not Path(self.path).is_dir():
            raise StoreError(f"{self.where}: staging folder {self.path} is gone (aborted?)")
        dim = self.dim if self.dim is not None else int(np.shape(vectors)[1])
        chunk = check_chunk(ids, vectors, dim, "error", self.normalized and scratch is None,
                            f"{self.where} part {part}")
        check_unique(chunk.ids, f"{self.where} part {part}")
        if not len(chunk.ids):
            raise StoreError(f"{self.where}: part {part} is empty")
        final.parent.mkdir(exist_ok=True)
        private = Path(self.path) / f"{PART_PREFIX}{part:05d}-{os.getpid()}-{secrets.token_hex(3)}"
        private.mkdir()
        try:
            writer = PartWriter(private, dim, WriteOptions(part_bytes=1 << 62))
            try:
                writer.write(chunk.ids, chunk.vectors)
                (info,) = writer.close()  # one file: parts never roll over
            except BaseException:
                writer.abort()
                raise
            layout.fsync_file(private / info.file)
            os.replace(private / info.file, final)  # whole or not at all
            layout.fsync_dir(final.parent)
        finally:
            shutil.rmtree(private, ignore_errors=True)
        return PartInfo(file=final.name, rows=info.rows)

    def read_part(self, part: int, scratch: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids [n] int64, vectors [n, D] float32) of one written part."""
        path = self.part_path(part, scratch)
        if not path.is_file():
            raise StoreError(f"{self.where}: part {part}{f' ({scratch})' if scratch else ''} "
                             "has not been written")
        dim = _file_dim(path)
        ids, vecs = zip(*iter_files([(path, None, None)], dim), strict=True)
        return np.concatenate(ids), np.concatenate(vecs)

    def missing_parts(self) -> list[int]:
        return [i for i in range(self.n_parts) if not self.part_path(i).is_file()]


def _file_dim(path: Path) -> int:
    try:
        return int(pq.read_schema(path).field("vector").type.list_size)
    except Exception as e:
        raise StoreError(f"{path}: not a vectors part ({type(e).__name__}: {e})") from e


@contextlib.contextmanager
def staged_version(kd: layout.KindDir, n_parts: int, dim: int | None = None,
                   normalized: bool = False) -> Iterator[StagedVersion]:
    """Open a temp dir for ``n_parts`` parts; it is deleted on leaving unless committed."""
    if n_parts < 1:
        raise StoreError(f"{kd.dataset}/{kd.kind}: n_parts must be >= 1, got {n_parts}")
    if dim is not None and dim < 1:
        raise StoreError(f"{kd.dataset}/{kd.kind}: dim must be positive, got {dim}")
    version = layout.new_version_id()
    tmp = make_temp_dir(kd.path, version)
    staged = StagedVersion(str(tmp), kd.dataset, kd.kind, version, n_parts, dim, normalized)
    try:
        with layout.writing_marker(tmp):
            yield staged
    finally:
        if tmp.exists():  # not committed: nothing of it may stay behind
            shutil.rmtree(tmp, ignore_errors=True)
            remove_empty_parents(kd)


def commit_staged(kd: layout.KindDir, staged: StagedVersion, info: ManifestInput, *,
                  expected_ids: Any = None, index: IndexConfig | None = None,
                  set_current: bool = True) -> str:
    """Seal and publish a staged version once every part is in; returns the version id."""
    where = staged.where
    tmp = Path(staged.path)
    if (staged.dataset, staged.kind) != (kd.dataset, kd.kind) or tmp.parent != kd.path:
        raise StoreError(f"{where}: staged for another kind than {kd.dataset}/{kd.kind}")
    if not (tmp / layout.WRITING_LOCK).is_file():
        raise StoreError(f"{where}: not staged any more (already committed or aborted)")
    missing = staged.missing_parts()
    if missing:
        raise StoreError(f"{where}: {len(missing)} of {staged.n_parts} parts missing "
                         f"({', '.join(map(str, missing[:5]))}); nothing was published")
    if info.normalized != staged.normalized:
        raise StoreError(f"{where}: staged normalized={staged.normalized}, manifest says "
                         f"{info.normalized}")
    paths = [staged.part_path(i) for i in range(staged.n_parts)]
    dim = staged.dim if staged.dim is not None else _file_dim(paths[0])
    if info.mean is not None and len(info.mean) != dim:
        raise StoreError(f"{where}: manifest mean has {len(info.mean)} values, dim is {dim}")
    parts, ids = [], []
    for path in paths:
        pf = open_part(path, dim)  # schema and dim of every part
        parts.append(PartInfo(file=path.name, rows=pf.metadata.num_rows))
        ids.append(pf.read(columns=["id"]).column(0).to_numpy())
    all_ids = np.concatenate(ids).astype(np.int64, copy=False)
    check_unique(all_ids, where)
    if expected_ids is not None:
        check_coverage(all_ids, expected_ids, where)
    for leftover in [tmp / SCRATCH, *tmp.glob(f"{PART_PREFIX}*")]:
        shutil.rmtree(leftover, ignore_errors=True)
    seal_version(kd, tmp, staged.version, layout.utc_now_iso(), parts, len(all_ids), dim,
                 info, index, np.empty(0, dtype=np.int64))
    with kd.lock():
        (tmp / layout.WRITING_LOCK).unlink()
        layout.publish_version(tmp, kd.version_path(staged.version))
        if set_current:
            kd.write_current(staged.version)
    return staged.version
