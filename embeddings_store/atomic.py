"""Write-aside-then-rename: the one copy of the idiom every writer in llm4srs uses.

A reader never sees a half-written file or folder: the content goes to a temporary name
beside the target (same filesystem), is flushed to disk, and one `os.replace`/`os.rename`
puts it in place. On an error the temporary is removed and the old target is untouched.
It lives in the store package because that is the lowest layer that writes files;
pipeline/ imports it from here (DESIGN.md, "Who may import whom").
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Make a rename inside `path` durable (best effort where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


UMASK = _umask()  # read once, at import (os.umask can only be read by setting it)


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `path` to write to; on success it replaces `path`.

    `suffix` keeps writers that pick a format by extension happy (".png", ".npy").
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.tmp-", suffix=suffix, dir=path.parent)
    os.fchmod(fd, 0o666 & ~UMASK)  # mkstemp makes 0600; the file gets what open() would give
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    fsync_dir(path.parent)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale(parent: Path) -> list[Path]:
    """Remove the temporary folders `atomic_dir` left in `parent` when its process was
    killed (SIGKILL, a power cut): their writer's pid is gone. A live writer's are kept."""
    removed = []
    for tmp in Path(parent).glob(".*.tmp-*-*"):
        pid = tmp.name.rsplit(".tmp-", 1)[1].split("-", 1)[0]
        if tmp.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp)
    return removed


@contextlib.contextmanager
def atomic_dir(path: str | Path, replace: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; on success it is renamed to `path`.

    With `replace`, an existing `path` is moved aside just before the rename and removed
    after it (a reader may briefly find nothing, never a mix); without it, an existing
    non-empty `path` is an error.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-{os.getpid()}-", dir=path.parent))
    tmp.chmod(0o777 & ~UMASK)  # mkdtemp makes 0700: readers in the group could not list it
    try:
        yield tmp
        old = None
        if replace and path.exists():  # aside first, so a failed rename can put it back
            old = path.with_name(f".{path.name}-old-{os.getpid()}")
            os.replace(path, old)
        try:
            os.rename(tmp, path)
        except BaseException:
            if old is not None:
                os.replace(old, path)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        fsync_dir(path.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
