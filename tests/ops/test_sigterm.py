"""SIGTERM (what `timeout`, Docker and schedulers send) of `llm4srs train` leaves no
Prefect server behind: the temporary server is a child process that used to be orphaned,
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


def test_sigterm_of_train_leaves_no_server(tmp_path: Path) -> None:
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"),
           "LLM4SRS_LOG_DIR": str(tmp_path / "logs")}
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
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)  # returns: nothing holds the pipes open
    assert proc.returncode == 128 + signal.SIGTERM, err.decode()[-2000:]
    _, alive = psutil.wait_procs(servers, timeout=15)
    assert not alive, f"orphaned Prefect server(s): {[p.pid for p in alive]}"
    assert not (tmp_path / "logs").exists()  # an interruption is not a bug report
