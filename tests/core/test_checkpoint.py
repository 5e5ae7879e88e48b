"""Checkpoint files under faults: a truncated file on --resume, a full disk while saving."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import torch

from pipeline import checkpoint
from pipeline.errors import InputError


def test_a_truncated_checkpoint_is_one_line_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "run" / "last.pt"
    checkpoint.save(path, {"model": {"w": torch.arange(1000.0)}, "epoch": 3})
    assert checkpoint.load(path)["epoch"] == 3
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(InputError, match=r"checkpoint .*last\.pt is unreadable .*without --resume"):
        checkpoint.load(path)
    path.write_bytes(b"")
    with pytest.raises(InputError, match=r"last\.pt is unreadable"):
        checkpoint.load(path)
    with pytest.raises(FileNotFoundError):
        checkpoint.load(tmp_path / "never.pt")


def test_a_full_disk_while_saving_is_an_oserror_naming_the_file(tmp_path, monkeypatch) -> None:
    import shutil

    path = tmp_path / "run" / "last.pt"
    checkpoint.save(path, {"epoch": 1})
    before = path.read_bytes()

    def failing_save(state, f):  # what torch's zip writer raises on ENOSPC
        Path(f).write_bytes(b"half")
        raise RuntimeError("[enforce fail at inline_container.cc:626] . PytorchStreamWriter "
                           "failed writing file data/0: file write failed")

    monkeypatch.setattr(torch, "save", failing_save)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9, 0))
    with pytest.raises(OSError) as err:
        checkpoint.save(path, {"epoch": 2})
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(path)
    assert "No space left on device" in err.value.strerror
    assert path.read_bytes() == before  # the previous checkpoint is intact
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temp file left
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**12, 0, 10**12))
    with pytest.raises(OSError) as err:
        checkpoint.save(path, {"epoch": 2})
    assert err.value.errno == errno.EIO  # space left: not called a full disk


def test_atomic_writes_get_the_permissions_open_would_give(tmp_path: Path) -> None:
    """mkstemp/mkdtemp make 0600/0700; a store or run folder others read must not keep it."""
    import os

    from embeddings_store.atomic import UMASK, atomic_dir, atomic_path

    with atomic_path(tmp_path / "f.bin") as tmp:
        tmp.write_bytes(b"x")
    assert (tmp_path / "f.bin").stat().st_mode & 0o777 == 0o666 & ~UMASK
    with atomic_dir(tmp_path / "d") as tmp:
        (tmp / "part").write_bytes(b"x")
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o777 & ~UMASK
    assert UMASK == (lambda m: (os.umask(m), m)[1])(os.umask(0))
