"""Housekeeping over versions: list, tag, roll CURRENT back, garbage-collect, verify.

Every mutation of CURRENT, TAGS.json or the set of versions happens under the per-kind
lock, and deletions go through an atomic rename to ``.trash-*`` first, so a crash in the
middle of gc never leaves a half-deleted directory that looks like a version.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from embeddings_store import layout
from embeddings_store.errors import StoreError
from embeddings_store.index import load_index
from embeddings_store.manifest import load_manifest
from embeddings_store.reader import read_ids, sha256_file
from embeddings_store.refs import VersionRef, resolve_selector


@dataclass(frozen=True)
class VersionInfo:
    """One row of ``store ls``."""

    dataset: str
    kind: str
    version: str
    current: bool
    count: int | None
    dim: int | None
    created_at: str | None
    tags: list[str] = field(default_factory=list)
    error: str | None = None  # set when the manifest cannot be read

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["error"] is None:
            del d["error"]
        return d


def list_kinds(root: Path, dataset: str | None = None) -> list[layout.KindDir]:
    """Every ``dataset/entity/name`` folder under ``root`` (optionally one dataset)."""
    if not root.is_dir():
        return []
    out = []
    for ds in sorted(root.iterdir()):
        if not ds.is_dir() or not layout.NAME_RE.match(ds.name) or (dataset and ds.name != dataset):
            continue
        for entity in sorted(ds.iterdir()):
            if not entity.is_dir() or not layout.NAME_RE.match(entity.name):
                continue
            for name in sorted(entity.iterdir()):
                if name.is_dir() and layout.NAME_RE.match(name.name):
                    out.append(layout.KindDir(root, ds.name, f"{entity.name}/{name.name}"))
    return out


def list_versions(
    root: Path, dataset: str | None = None, kind: str | None = None
) -> list[VersionInfo]:
    """All complete versions, grouped by dataset and kind, oldest first within a kind."""
    rows = []
    for kd in list_kinds(root, dataset):
        if kind and kd.kind != kind:
            continue
        try:
            current = kd.read_current()
            tags = kd.read_tags()
        except StoreError:
            current, tags = None, {}
        by_version: dict[str, list[str]] = {}
        for t, v in sorted(tags.items()):
            by_version.setdefault(v, []).append(t)
        for version in kd.versions():
            common = {
                "dataset": kd.dataset,
                "kind": kd.kind,
                "version": version,
                "current": version == current,
                "tags": by_version.get(version, []),
            }
            try:
                m = load_manifest(kd.version_path(version) / layout.MANIFEST)
                rows.append(
                    VersionInfo(count=m.count, dim=m.dim, created_at=m.created_at, **common)
                )
            except StoreError as e:
                rows.append(
                    VersionInfo(count=None, dim=None, created_at=None, error=str(e), **common)
                )
    return rows


def tag(kd: layout.KindDir, version: str, name: str, force: bool = False) -> None:
    """Name a version (e.g. ``paper``); moving an existing tag needs ``force``."""
    if (
        not layout.TAG_RE.match(name)
        or name in layout.RESERVED_TAGS
        or layout.VERSION_RE.match(name)
    ):
        raise StoreError(
            f"invalid tag {name!r}: letters, digits, '.', '_', '-'; not current/latest"
        )
    with kd.lock():
        if version not in kd.versions():
            raise StoreError(f"{kd.dataset}/{kd.kind}: no version {version}")
        tags = kd.read_tags()
        if name in tags and tags[name] != version and not force:
            raise StoreError(
                f"{kd.dataset}/{kd.kind}: tag {name} already names {tags[name]} (use force)"
            )
        tags[name] = version
        kd.write_tags(tags)


def untag(kd: layout.KindDir, name: str) -> None:
    with kd.lock():
        tags = kd.read_tags()
        if name not in tags:
            raise StoreError(f"{kd.dataset}/{kd.kind}: no tag {name}")
        del tags[name]
        kd.write_tags(tags)


def rollback(kd: layout.KindDir, to: str | None = None) -> str:
    """Point CURRENT at ``to`` (version, tag, latest), or at the version before CURRENT."""
    where = f"{kd.dataset}/{kd.kind}"
    with kd.lock():
        if to is not None:
            target = resolve_selector(kd, to)
        else:
            current = kd.read_current()
            if current is None:
                raise StoreError(f"{where}: no CURRENT version to roll back from")
            older = [v for v in kd.versions() if v < current]
            if not older:
                raise StoreError(f"{where}: no version older than CURRENT {current}")
            target = older[-1]
        kd.write_current(target)
    return target


@dataclass(frozen=True)
class GcReport:
    removed: list[str]
    kept: list[str]
    cleaned: list[str]  # dead writers' temp dirs, leftover trash and temp files


def gc(kd: layout.KindDir, keep: int = 3, dry_run: bool = False) -> GcReport:
    """Delete all but the ``keep`` newest versions, never CURRENT or a tagged one."""
    if keep < 0:
        raise StoreError(f"keep must be >= 0, got {keep}")
    with kd.lock():
        versions = kd.versions()
        protected = set(versions[-keep:] if keep else []) | set(kd.read_tags().values())
        current = kd.read_current()
        if current:
            protected.add(current)
        removed = [v for v in versions if v not in protected]
        cleaned = [
            p.name
            for p in kd.temp_dirs()
            if p.name.startswith(layout.TRASH_PREFIX) or not layout.writer_is_alive(p)
        ]
        stale_files = (
            [p for p in kd.path.glob(".*.tmp-*") if p.is_file()] if kd.path.is_dir() else []
        )
        cleaned += [p.name for p in stale_files]
        if not dry_run:
            for v in removed:
                trash = kd.path / f"{layout.TRASH_PREFIX}{v}-{secrets.token_hex(3)}"
                os.rename(kd.version_path(v), trash)
                shutil.rmtree(trash)
            for name in cleaned:
                path = kd.path / name
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
            if removed:
                layout.fsync_dir(kd.path)
    return GcReport(removed=removed, kept=[v for v in versions if v in protected], cleaned=cleaned)


@dataclass(frozen=True)
class VerifyReport:
    ref: str
    ok: bool
    problems: list[str]


def verify(ref: VersionRef) -> VerifyReport:
    """Recompute every checksum and re-check counts, ids and the index against the manifest."""
    problems: list[str] = []
    try:
        m = load_manifest(ref.path / layout.MANIFEST)
    except StoreError as e:
        return VerifyReport(str(ref), False, [str(e)])
    for name, info in sorted(m.files.items()):
        path = ref.path / name
        if not path.is_file():
            problems.append(f"{name}: missing")
            continue
        size = path.stat().st_size
        if size != info.size:
            problems.append(f"{name}: size {size}, manifest says {info.size}")
        elif sha256_file(path) != info.sha256:
            problems.append(f"{name}: sha256 mismatch")
    listed = set(m.files) | {layout.MANIFEST}
    extra = sorted(p.name for p in ref.path.iterdir() if p.name not in listed)
    if extra:
        problems.append(f"files not in the manifest: {', '.join(extra)}")
    missing_parts = [p.file for p in m.parts if p.file not in m.files]
    if missing_parts:
        problems.append(f"parts without a checksum: {', '.join(missing_parts)}")
    if not problems:
        try:
            ids = read_ids(ref.path, m)
            if len(ids) != m.count:
                problems.append(f"{len(ids)} ids, manifest count {m.count}")
            elif len(np.unique(ids)) != len(ids):
                problems.append("duplicate ids")
            if m.index is not None:
                index = load_index(ref.path / m.index.file, mmap=True)
                if index.ntotal != m.count or index.d != m.dim:
                    problems.append(
                        f"index holds {index.ntotal}x{index.d}, manifest {m.count}x{m.dim}"
                    )
        except StoreError as e:
            problems.append(str(e))
    return VerifyReport(str(ref), not problems, problems)
