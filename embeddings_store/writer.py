"""Writing one immutable version: aside, validated, renamed into place, CURRENT last.

Order of a write (a SIGKILL at any step leaves the previous version CURRENT and intact):

1. stream validated chunks into Parquet parts inside ``<kind>/.tmp-<version>-<pid>/``
   (never listed; gc removes it once its writer is dead);
2. check ids (unique, covering ``expected_ids``), build the optional index from the parts;
3. checksum every file, write ``manifest.json``, fsync;
4. under the per-kind lock: rename the temp dir to ``<kind>/<version>`` and only then
   replace ``CURRENT`` (temp file + ``os.replace``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from embeddings_store import index as index_mod
from embeddings_store import layout
from embeddings_store.errors import StoreError
from embeddings_store.index_choice import IndexConfig
from embeddings_store.manifest import (
    DatasetInfo,
    FileInfo,
    Manifest,
    ManifestInput,
    PartInfo,
    manifest_json,
)
from embeddings_store.parts import PartWriter, WriteOptions
from embeddings_store.reader import iter_files, open_part, sha256_file
from embeddings_store.validate import NanPolicy, check_chunk, check_coverage, check_unique

DROPPED_SAMPLE = 20


def code_version() -> str:
    """``git describe`` of the checkout when there is one, else the installed package version."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    with contextlib.suppress(metadata.PackageNotFoundError):
        return metadata.version("llm4srs")
    return "unknown"


def make_temp_dir(kind_path: Path, version: str) -> Path:
    tmp = kind_path / f"{layout.TMP_PREFIX}{version}-{os.getpid()}"
    for _ in range(3):  # a concurrent gc may rmdir an empty kind dir between the two mkdirs
        with contextlib.suppress(FileNotFoundError):
            kind_path.mkdir(parents=True, exist_ok=True)
            tmp.mkdir()
            return tmp
    raise StoreError(f"{kind_path}: could not create a temporary directory")


def write_version(
    kd: layout.KindDir,
    chunks: Iterable[tuple[Any, Any]],
    dim: int,
    info: ManifestInput,
    *,
    index: IndexConfig | None = None,
    nan_policy: NanPolicy = "error",
    expected_ids: Any = None,
    set_current: bool = True,
    options: WriteOptions | None = None,
    dropped: np.ndarray | None = None,
) -> str:
    """Stream ``chunks`` of (ids [n], vectors [n, dim]) into a new version; returns its id."""
    opts = options or WriteOptions()
    where = f"{kd.dataset}/{kd.kind}"
    if not isinstance(dim, int) or dim < 1:
        raise StoreError(f"{where}: dim must be a positive integer, got {dim!r}")
    if info.mean is not None and len(info.mean) != dim:
        raise StoreError(f"{where}: manifest mean has {len(info.mean)} values, dim is {dim}")
    version = layout.new_version_id()
    created_at = layout.utc_now_iso()
    tmp = make_temp_dir(kd.path, version)
    published = False
    try:
        with layout.writing_marker(tmp):
            parts, all_ids, dropped_ids = _write_parts(
                tmp, chunks, dim, info, nan_policy, opts, where
            )
            if dropped is not None:
                dropped_ids = np.concatenate([dropped, dropped_ids])
            if not len(all_ids):
                raise StoreError(f"{where}: no vectors to write")
            check_unique(all_ids, where)
            if expected_ids is not None:
                check_coverage(all_ids, expected_ids, where)
            count = len(all_ids)
            del all_ids
            seal_version(kd, tmp, version, created_at, parts, count, dim, info, index, dropped_ids)
            with kd.lock():
                # Under the lock, so gc never sees a live writer without its marker.
                (tmp / layout.WRITING_LOCK).unlink()
                layout.publish_version(tmp, kd.version_path(version))
                published = True
                if set_current:
                    kd.write_current(version)
    except BaseException as err:
        if not published:
            shutil.rmtree(tmp, ignore_errors=True)
            remove_empty_parents(kd)
        if isinstance(err, OSError):  # disk full, permissions: one line, not a traceback
            what = err.strerror or str(err).splitlines()[0] or type(err).__name__
            done = "nothing was published" if not published else "it is in place, not CURRENT"
            raise StoreError(
                f"{where}: writing version {version} failed ({what}); {done}, CURRENT is unchanged"
            ) from err
        raise
    return version


def seal_version(
    kd: layout.KindDir,
    tmp: Path,
    version: str,
    created_at: str,
    parts: list[PartInfo],
    count: int,
    dim: int,
    info: ManifestInput,
    index: IndexConfig | None,
    dropped_ids: np.ndarray,
) -> None:
    """Build the optional index from the parts in ``tmp``, checksum every file and write
    ``manifest.json``: after this the temp dir is a complete version, ready to rename."""
    paths = [(tmp / p.file, p.rows, None) for p in parts]
    index_info = None
    if index is not None:
        faiss_index, index_info = index_mod.build_index(
            lambda: iter_files(paths, dim), count, dim, info.metric, index
        )
        index_mod.save_index(faiss_index, tmp / index_info.file)
        del faiss_index
    names = [p.file for p in parts] + ([index_info.file] if index_info else [])
    files = {}
    for name in names:
        layout.fsync_file(tmp / name)
        files[name] = FileInfo(
            sha256=sha256_file(tmp / name), size=(tmp / name).stat().st_size
        )
    for p in parts:  # what is on disk is what the manifest will claim
        open_part(tmp / p.file, dim, p.rows, files[p.file].size)
    manifest = Manifest(
        version=version,
        dataset=DatasetInfo(name=kd.dataset, fingerprint=info.dataset_fingerprint),
        entity=kd.kind.split("/")[0],
        kind=kd.kind,
        dim=dim,
        count=count,
        normalized=info.normalized,
        metric=info.metric,
        centered=info.centered,
        mean=info.mean,
        producer=info.producer,
        parents=info.parents,
        created_at=created_at,
        code_version=info.code_version or code_version(),
        metrics=info.metrics,
        parts=parts,
        files=files,
        index=index_info,
        dropped_count=len(dropped_ids),
        dropped_ids_sample=[int(x) for x in dropped_ids[:DROPPED_SAMPLE]],
    )
    layout.atomic_write_text(tmp / layout.MANIFEST, manifest_json(manifest))


def remove_empty_parents(kd: layout.KindDir) -> None:
    """Failed first write: leave no empty kind/entity/dataset folders behind (rmdir only
    ever removes empty directories, so a concurrent writer's files are safe)."""
    for path in (kd.path, kd.path.parent, kd.path.parent.parent):
        try:
            path.rmdir()
        except OSError:
            return


def _write_parts(
    tmp: Path,
    chunks: Iterable[tuple[Any, Any]],
    dim: int,
    info: ManifestInput,
    nan_policy: NanPolicy,
    opts: WriteOptions,
    where: str,
) -> tuple[list[PartInfo], np.ndarray, np.ndarray]:
    """Validate and write every chunk; returns (parts, all ids [N], dropped ids [M])."""
    pw = PartWriter(tmp, dim, opts)
    ids_seen: list[np.ndarray] = []
    dropped: list[np.ndarray] = []
    try:
        for i, (ids, vectors) in enumerate(chunks):
            chunk = check_chunk(
                ids, vectors, dim, nan_policy, info.normalized, f"{where} chunk {i}"
            )
            ids_seen.append(chunk.ids.copy())
            dropped.append(chunk.dropped_ids)
            pw.write(chunk.ids, chunk.vectors)
        parts = pw.close()
    except BaseException:
        pw.abort()
        raise
    all_ids = np.concatenate(ids_seen) if ids_seen else np.empty(0, dtype=np.int64)
    drops = np.concatenate(dropped) if dropped else np.empty(0, dtype=np.int64)
    return parts, all_ids, drops


def array_chunks(
    ids: np.ndarray, vectors: np.ndarray, rows: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Row-slices (views, no copies) of in-memory arrays."""
    for start in range(0, len(ids), max(1, rows)):
        yield ids[start : start + rows], vectors[start : start + rows]
