"""Where things live on disk, and the few primitives that make updates atomic.

Layout (DESIGN.md, "Embeddings store contract")::

    <root>/<dataset>/<entity>/<name>/<version>/vectors.parquet | vectors-NNNNN.parquet
                                              /index.faiss      (optional)
                                              /manifest.json
    <root>/<dataset>/<entity>/<name>/CURRENT   version id, replaced atomically, last
    <root>/<dataset>/<entity>/<name>/TAGS.json {tag: version}, replaced atomically
    <root>/<dataset>/<entity>/<name>/.lock     flock serialising CURRENT/TAGS/gc updates

Only directories whose name is a version id *and* that hold ``manifest.json`` count as
versions; writers work in ``.tmp-*`` directories and gc deletes through ``.trash-*``
renames, so a half-written or half-deleted version is never listed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from embeddings_store.atomic import atomic_write_text, fsync_dir
from embeddings_store.errors import StoreError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
# vYYYYMMDDTHHMMSS.ffffffZ-<6 hex>: sorts by creation time, unique across writers.
VERSION_RE = re.compile(r"^v\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{6}$")
TAG_RE = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,63}$")
RESERVED_TAGS = frozenset({"current", "latest"})

CURRENT = "CURRENT"
TAGS = "TAGS.json"
LOCK = ".lock"
MANIFEST = "manifest.json"
TMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".trash-"
WRITING_LOCK = ".writing"  # held (flock) by a live writer inside its temp dir


def check_name(value: str, what: str) -> str:
    """Reject names that could escape the store or hide (``..``, ``/``, leading dot)."""
    if not NAME_RE.match(value):
        raise StoreError(f"invalid {what} {value!r}: use letters, digits, '.', '_', '-', '+'")
    return value


def split_kind(kind: str) -> tuple[str, str]:
    """``"items/tslrec"`` → ``("items", "tslrec")``."""
    parts = kind.split("/")
    if len(parts) != 2:
        raise StoreError(f"invalid kind {kind!r}: expected <entity>/<name>, e.g. items/tslrec")
    return check_name(parts[0], "entity"), check_name(parts[1], "kind name")


def new_version_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"v{now:%Y%m%dT%H%M%S}.{now:%f}Z-{secrets.token_hex(3)}"


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class KindDir:
    """The folder of one ``dataset/entity/name``; all per-kind paths hang off it."""

    root: Path
    dataset: str
    kind: str

    def __post_init__(self) -> None:
        check_name(self.dataset, "dataset")
        split_kind(self.kind)

    @property
    def path(self) -> Path:
        return self.root / self.dataset / self.kind

    def version_path(self, version: str) -> Path:
        if not VERSION_RE.match(version):
            raise StoreError(f"invalid version id {version!r} for {self.dataset}/{self.kind}")
        return self.path / version

    def versions(self) -> list[str]:
        """Complete versions, oldest first (version ids sort by creation time)."""
        if not self.path.is_dir():
            return []
        found = [
            p.name
            for p in self.path.iterdir()
            if VERSION_RE.match(p.name) and (p / MANIFEST).is_file()
        ]
        return sorted(found)

    def read_current(self) -> str | None:
        try:
            text = (self.path / CURRENT).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        if not VERSION_RE.match(text):
            raise StoreError(f"{self.path / CURRENT}: does not hold a version id ({text[:40]!r})")
        return text

    def write_current(self, version: str) -> None:
        """Point CURRENT at ``version``; call under :meth:`lock`. Atomic via os.replace."""
        if not (self.version_path(version) / MANIFEST).is_file():
            raise StoreError(f"{self.dataset}/{self.kind}: no complete version {version}")
        atomic_write_text(self.path / CURRENT, version + "\n")

    def read_tags(self) -> dict[str, str]:
        path = self.path / TAGS
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, json.JSONDecodeError, RecursionError) as e:
            raise StoreError(f"{path}: unreadable tags file ({type(e).__name__})") from e
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise StoreError(f"{path}: tags file is not a {{tag: version}} object")
        return dict(data)

    def write_tags(self, tags: dict[str, str]) -> None:
        """Replace TAGS.json atomically; call under :meth:`lock`."""
        atomic_write_text(self.path / TAGS, json.dumps(tags, indent=2, sort_keys=True) + "\n")

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive per-kind lock; the kernel drops it if the holder dies (even SIGKILL)."""
        try:
            fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            raise StoreError(f"{self.dataset}/{self.kind}: no such kind in {self.root}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def temp_dirs(self) -> list[Path]:
        if not self.path.is_dir():
            return []
        return [
            p
            for p in self.path.iterdir()
            if p.is_dir() and (p.name.startswith(TMP_PREFIX) or p.name.startswith(TRASH_PREFIX))
        ]


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def writing_marker(temp_dir: Path) -> Iterator[None]:
    """Hold a flock inside a writer's temp dir, so gc can tell a live writer from a dead one."""
    fd = os.open(temp_dir / WRITING_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def writer_is_alive(temp_dir: Path) -> bool:
    """True when some process still holds the temp dir's writing lock."""
    try:
        fd = os.open(temp_dir / WRITING_LOCK, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def publish_version(temp_dir: Path, final_dir: Path) -> None:
    """Move a fully written and validated temp dir into place (one atomic rename)."""
    os.rename(temp_dir, final_dir)
    fsync_dir(final_dir.parent)
