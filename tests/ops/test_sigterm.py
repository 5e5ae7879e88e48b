"""SIGTERM (what `timeout`, Docker and schedulers send) or SIGKILL of `llm4srs train` leaves
no Prefect server behind: the temporary server is a child process that used to be orphaned,
re-parented to PID 1 and holding the caller's stdout/stderr."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.ops
CLI = Path(sys.executable).with_name("llm4srs")


def _train_until_under_way(tmp_path: Path) -> tuple[subprocess.Popen, list[psutil.Process]]:
    """Start `llm4srs train`; return it and its Prefect server once training is under way."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update({"PREFECT_HOME": str(tmp_path / "prefect"), "LLM4SRS_LOG_DIR": str(tmp_path / "logs")})
    proc = subprocess.Popen(
        [str(CLI), "train", "--dataset", "synthetic", "--backbone", "sasrec", "--seeds", "0",
         "--set", "epochs=200", "--set", "patience=200", "--set", "model.dim=16",
         "--data-dir", str(tmp_path / "data"), "--runs-dir", str(tmp_path / "runs")],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    me = psutil.Process(proc.pid)
    servers: list[psutil.Process] = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        servers = [c for c in me.children(recursive=True)
                   if "uvicorn" in " ".join(c.cmdline())]
        if servers and list((tmp_path / "runs").rglob("last.pt")):  # training is under way
            break
        time.sleep(1)
    assert servers, "the temporary Prefect server never started"
    return proc, servers


def test_sigterm_of_train_leaves_no_server(tmp_path: Path) -> None:
    proc, servers = _train_until_under_way(tmp_path)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)  # returns: nothing holds the pipes open
    assert proc.returncode == 128 + signal.SIGTERM, err.decode()[-2000:]
    _, alive = psutil.wait_procs(servers, timeout=15)
    assert not alive, f"orphaned Prefect server(s): {[p.pid for p in alive]}"
    assert not (tmp_path / "logs").exists()  # an interruption is not a bug report


def test_sigkill_of_train_leaves_no_server(tmp_path: Path) -> None:
    """SIGKILL runs no exit code: the server must go because the kernel tells it its parent
    died (PR_SET_PDEATHSIG), and must not hold the caller's pipes meanwhile."""
    if sys.platform != "linux":
        pytest.skip("parent-death signal is Linux only")
    proc, servers = _train_until_under_way(tmp_path)
    proc.kill()
    proc.communicate(timeout=60)  # returns: the server does not hold our stdout/stderr
    assert proc.returncode == -signal.SIGKILL
    _, alive = psutil.wait_procs(servers, timeout=20)
    assert not alive, f"orphaned Prefect server(s): {[p.pid for p in alive]}"
