"""``EmbeddingStore``: the one object callers use; a thin facade over the modules.

It holds nothing but the root path, so two stores (or two processes) on the same root
see the same state: everything else lives on disk, guarded by the per-kind lock.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from embeddings_store import layout, manage
from embeddings_store.errors import StoreError
from embeddings_store.index import VectorIndex, exact_index, load_index
from embeddings_store.index_choice import IndexConfig
from embeddings_store.manifest import Manifest, ManifestInput, Parent, load_manifest
from embeddings_store.parts import WriteOptions
from embeddings_store.reader import DEFAULT_CHUNK_BYTES, IdMap, iter_version, read_ids, read_version
from embeddings_store.refs import VersionRef, kind_dir, parse_ref, resolve
from embeddings_store.staged import StagedVersion, commit_staged, staged_version
from embeddings_store.validate import NanPolicy, check_chunk, check_coverage, check_unique
from embeddings_store.writer import array_chunks, write_version

RefLike = str | VersionRef


class EmbeddingStore:
    """Versioned embedding sets under ``root`` (see DESIGN.md, "Embeddings store contract")."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    # ---- writing -------------------------------------------------------------------

    def write(
        self,
        dataset: str,
        kind: str,
        ids: Any,
        vectors: Any,
        manifest: ManifestInput,
        *,
        dim: int | None = None,
        index: IndexConfig | None = None,
        nan_policy: NanPolicy = "error",
        expected_ids: Any = None,
        set_current: bool = True,
        options: WriteOptions | None = None,
    ) -> VersionRef:
        """Write in-memory ids [N] and vectors [N, D] as a new version (CURRENT by default).

        Everything is validated before the first byte is written, so bad input leaves the
        store untouched.
        """
        kd = layout.KindDir(self.root, dataset, kind)
        where = f"{dataset}/{kind}"
        shape = np.shape(vectors)
        if len(shape) != 2:
            raise StoreError(f"{where}: vectors must be 2-D [N, D], got shape {shape}")
        d = dim if dim is not None else int(shape[1])
        chunk = check_chunk(ids, vectors, d, nan_policy, manifest.normalized, where)
        check_unique(chunk.ids, where)
        if expected_ids is not None:
            check_coverage(chunk.ids, expected_ids, where)
        if not len(chunk.ids):
            raise StoreError(f"{where}: no vectors to write")
        opts = options or WriteOptions()
        rows = max(1, opts.row_group_bytes // (d * 4 + 8))
        version = write_version(
            kd,
            array_chunks(chunk.ids, chunk.vectors, rows),
            d,
            manifest,
            index=index,
            expected_ids=expected_ids,
            set_current=set_current,
            options=opts,
            dropped=chunk.dropped_ids,
        )
        return VersionRef(dataset, kind, version, kd.version_path(version))

    def write_chunks(
        self,
        dataset: str,
        kind: str,
        chunks: Iterable[tuple[Any, Any]],
        dim: int,
        manifest: ManifestInput,
        *,
        index: IndexConfig | None = None,
        nan_policy: NanPolicy = "error",
        expected_ids: Any = None,
        set_current: bool = True,
        options: WriteOptions | None = None,
    ) -> VersionRef:
        """Stream (ids [n], vectors [n, dim]) chunks into a new version; memory stays bounded."""
        kd = layout.KindDir(self.root, dataset, kind)
        version = write_version(
            kd,
            chunks,
            dim,
            manifest,
            index=index,
            nan_policy=nan_policy,
            expected_ids=expected_ids,
            set_current=set_current,
            options=options,
        )
        return VersionRef(dataset, kind, version, kd.version_path(version))

    @contextlib.contextmanager
    def stage(
        self, dataset: str, kind: str, n_parts: int, *, dim: int | None = None,
        normalized: bool = False,
    ) -> Iterator[StagedVersion]:
        """A version to be written in ``n_parts`` parts by independent producers
        (``StagedVersion.write_part``) and published by :meth:`commit`; leaving the block
        without a commit deletes everything staged."""
        with staged_version(layout.KindDir(self.root, dataset, kind), n_parts, dim,
                            normalized) as staged:
            yield staged

    def commit(
        self,
        staged: StagedVersion,
        manifest: ManifestInput,
        *,
        expected_ids: Any = None,
        index: IndexConfig | None = None,
        set_current: bool = True,
    ) -> VersionRef:
        """Publish a staged version once every part is in (ids unique and covering
        ``expected_ids``); a missing part raises and publishes nothing."""
        kd = layout.KindDir(self.root, staged.dataset, staged.kind)
        version = commit_staged(kd, staged, manifest, expected_ids=expected_ids, index=index,
                                set_current=set_current)
        return VersionRef(staged.dataset, staged.kind, version, kd.version_path(version))

    def reindex(self, ref: RefLike, index: IndexConfig, set_current: bool = True) -> VersionRef:
        """A new version with the same vectors and a (re)built index; the source is its parent."""
        src = self.resolve(ref)
        m = self.manifest(src)
        info = ManifestInput(
            dataset_fingerprint=m.dataset.fingerprint,
            producer=m.producer,
            metric=m.metric,
            normalized=m.normalized,
            centered=m.centered,
            mean=m.mean,
            parents=[*m.parents, Parent(kind=m.kind, version=m.version, dataset=m.dataset.name)],
            metrics=m.metrics,
            code_version=m.code_version,
        )
        return self.write_chunks(
            src.dataset,
            src.kind,
            self.iter_chunks(src),
            m.dim,
            info,
            index=index,
            set_current=set_current,
        )

    # ---- reading -------------------------------------------------------------------

    def resolve(self, ref: RefLike, dataset: str | None = None) -> VersionRef:
        """``[dataset/]entity/name[@version|@tag|@current|@latest]`` → an existing version."""
        if isinstance(ref, VersionRef):
            if not (ref.path / layout.MANIFEST).is_file():
                raise StoreError(f"{ref}: version not found")
            return ref
        return resolve(self.root, ref, dataset)

    def kind(self, ref: str, dataset: str | None = None) -> layout.KindDir:
        """The kind folder of ``[dataset/]entity/name`` (no ``@selector`` allowed)."""
        parsed = parse_ref(ref, dataset)
        if parsed.selector is not None:
            raise StoreError(f"{ref!r}: expected a kind without '@{parsed.selector}'")
        return kind_dir(self.root, parsed)

    def manifest(self, ref: RefLike) -> Manifest:
        r = self.resolve(ref)
        return load_manifest(r.path / layout.MANIFEST)

    def read(self, ref: RefLike) -> tuple[np.ndarray, np.ndarray]:
        """(ids [N] int64, vectors [N, D] float32), read-only; zero-copy for one row group."""
        r = self.resolve(ref)
        return read_version(r.path, self.manifest(r))

    def iter_chunks(
        self, ref: RefLike, max_bytes: int = DEFAULT_CHUNK_BYTES
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Stream (ids [n], vectors [n, D]) chunks of at most ``max_bytes`` each."""
        r = self.resolve(ref)
        yield from iter_version(r.path, self.manifest(r), max_bytes)

    def read_ids(self, ref: RefLike) -> np.ndarray:
        r = self.resolve(ref)
        return read_ids(r.path, self.manifest(r))

    def id_map(self, ref: RefLike) -> IdMap:
        """ids ↔ rows of a version (rows are Parquet row order = index insertion order)."""
        return IdMap(self.read_ids(ref))

    def open_index(
        self, ref: RefLike, mmap: bool = True, exact_fallback: bool = True
    ) -> VectorIndex:
        """The version's FAISS index (memory-mapped, read-only), or an exact one built in
        memory when the version has none and ``exact_fallback`` is set."""
        r = self.resolve(ref)
        m = self.manifest(r)
        if m.index is None:
            if not exact_fallback:
                raise StoreError(f"{r}: version has no index")
            ids, vectors = read_version(r.path, m)
            return exact_index(ids, vectors, m.metric)
        index = load_index(r.path / m.index.file, mmap=mmap)
        if index.ntotal != m.count or index.d != m.dim:
            raise StoreError(
                f"{r}: index holds {index.ntotal}x{index.d}, manifest {m.count}x{m.dim}"
            )
        return VectorIndex(index, m.index.metric, m.index.params)

    # ---- managing ------------------------------------------------------------------

    def list(self, dataset: str | None = None, kind: str | None = None) -> list[manage.VersionInfo]:
        return manage.list_versions(self.root, dataset, kind)

    def tag(self, ref: RefLike, name: str, force: bool = False) -> VersionRef:
        r = self.resolve(ref)
        manage.tag(layout.KindDir(self.root, r.dataset, r.kind), r.version, name, force)
        return r

    def untag(self, dataset: str, kind: str, name: str) -> None:
        manage.untag(layout.KindDir(self.root, dataset, kind), name)

    def rollback(self, dataset: str, kind: str, to: str | None = None) -> VersionRef:
        """CURRENT := ``to`` (version id, tag, ``latest``) or the version before CURRENT."""
        kd = layout.KindDir(self.root, dataset, kind)
        version = manage.rollback(kd, to)
        return VersionRef(dataset, kind, version, kd.version_path(version))

    def gc(self, dataset: str, kind: str, keep: int = 3, dry_run: bool = False) -> manage.GcReport:
        return manage.gc(layout.KindDir(self.root, dataset, kind), keep, dry_run)

    def verify(self, ref: RefLike) -> manage.VerifyReport:
        return manage.verify(self.resolve(ref))
