"""Crash safety and concurrency with real processes: SIGKILL mid-write, two writers at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from store_helpers import REPO, make_data, same_bits

from embeddings_store import EmbeddingStore, layout

SCRIPT = Path(__file__).resolve().parent / "crash_writer.py"
KIND = "items/crash"
pytestmark = pytest.mark.ops


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def _writer(root: Path, seed: int, point: str, go: Path | None = None) -> subprocess.Popen[str]:
    args = [sys.executable, str(SCRIPT), str(root), str(seed), point, *([str(go)] if go else [])]
    return subprocess.Popen(
        args, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _run(root: Path, seed: int, point: str) -> subprocess.CompletedProcess[str]:
    proc = _writer(root, seed, point)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding one good CURRENT version (seed 1), built once by a real writer."""
    root = tmp_path_factory.mktemp("crash") / "store"
    done = _run(root, 1, "none")
    assert done.returncode == 0, done.stderr
    return root


def _assert_previous_version_intact(root: Path, before: str) -> None:
    store = EmbeddingStore(root)
    ref = store.resolve(f"ds/{KIND}@current")
    assert ref.version == before
    ids, x = make_data(3_000, 16, seed=1)
    got_ids, got = store.read(ref)
    assert np.array_equal(got_ids, ids) and same_bits(got, x)
    assert store.verify(ref).ok
    for info in store.list():  # whatever is listed is complete and checks out
        assert info.error is None
        assert store.verify(f"ds/{KIND}@{info.version}").ok


@pytest.mark.parametrize("point", ["part", "index", "manifest", "publish", "current"])
def test_sigkill_during_write_keeps_previous_version(
    tmp_path: Path, base: Path, point: str
) -> None:
    root = tmp_path / "store"
    subprocess.run(["cp", "-a", str(base), str(root)], check=True)
    kd = layout.KindDir(root, "ds", KIND)
    before = kd.read_current()
    assert before is not None

    done = _run(root, 2, point)
    assert done.returncode == -signal.SIGKILL, done.stderr

    _assert_previous_version_intact(root, before)
    listed = [v.version for v in EmbeddingStore(root).list()]
    if point == "current":  # renamed into place (complete) but never made CURRENT
        assert len(listed) == 2 and listed[0] == before
    else:
        assert listed == [before]
    leftovers = kd.temp_dirs()
    assert len(leftovers) == (0 if point == "current" else 1)

    # the dead writer's leftovers are garbage; gc removes them, then a new write works
    report = EmbeddingStore(root).gc("ds", KIND, keep=5)
    assert {p.name for p in leftovers} <= set(report.cleaned) and report.removed == []
    assert sorted(p.name for p in kd.path.iterdir() if p.name.startswith(".")) == [".lock"]
    assert _run(root, 3, "none").returncode == 0
    assert EmbeddingStore(root).resolve(f"ds/{KIND}").version != before


def test_two_concurrent_writers_of_the_same_kind(tmp_path: Path, base: Path) -> None:
    root = tmp_path / "store"
    subprocess.run(["cp", "-a", str(base), str(root)], check=True)
    go = tmp_path / "go"
    procs = [_writer(root, seed, "none", go) for seed in (11, 12)]
    time.sleep(0.5)
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e for _, e in outs]
    versions = {seed: out.strip() for seed, (out, _) in zip((11, 12), outs, strict=True)}

    store = EmbeddingStore(root)
    listed = [v.version for v in store.list()]
    assert set(versions.values()) <= set(listed) and len(listed) == 3
    current = store.resolve(f"ds/{KIND}").version
    assert current in versions.values()
    for seed, version in versions.items():
        ref = store.resolve(f"ds/{KIND}@{version}")
        assert store.verify(ref).ok
        ids, x = make_data(3_000, 16, seed=seed)
        got_ids, got = store.read(ref)
        assert np.array_equal(got_ids, ids) and same_bits(got, x)
    assert not layout.KindDir(root, "ds", KIND).temp_dirs()


def test_gc_spares_a_live_writers_temp_dir(tmp_path: Path, base: Path) -> None:
    root = tmp_path / "store"
    subprocess.run(["cp", "-a", str(base), str(root)], check=True)
    kd = layout.KindDir(root, "ds", KIND)
    tmp = kd.path / f"{layout.TMP_PREFIX}{layout.new_version_id()}-1"
    tmp.mkdir()
    with layout.writing_marker(tmp):  # what a live writer holds
        assert EmbeddingStore(root).gc("ds", KIND).cleaned == []
        assert tmp.is_dir()
    assert EmbeddingStore(root).gc("ds", KIND).cleaned == [tmp.name]
    assert not tmp.exists()
