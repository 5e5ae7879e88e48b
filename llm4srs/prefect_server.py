"""The temporary Prefect API server of one CLI command, owned by that command.

Without `PREFECT_API_URL`, Prefect starts a temporary ("ephemeral") server as a child
process and stops it at exit. A command killed with SIGKILL (the OOM killer, `kill -9`,
`docker kill` after its grace period) runs no exit code, so that child was orphaned:
re-parented to PID 1, running forever and holding the caller's stdout/stderr open (a
wrapper waiting on the pipes hung).

`owned_server()` starts the same server (the uvicorn app factory Prefect's own temporary
server runs, without the UI) itself, so that:
- on Linux the kernel sends it SIGTERM when this process dies, however it dies
  (`PR_SET_PDEATHSIG`, set in the child before exec);
- its stdin/stdout/stderr are not the caller's (its log goes to a temp file, shown only
  when it fails to start);
- it is stopped when the command ends, normally or not.
A user's own server (`PREFECT_API_URL` set) is used as it is; nothing is started.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
STARTUP_SECONDS = float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", 180))


def _die_with_parent(parent: int) -> None:
    """In the child, before exec: SIGTERM when the parent dies (Linux only)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def start() -> tuple[subprocess.Popen, str, object]:
    """Start the server; (process, API URL, its log file). RuntimeError if it never answers."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    log = tempfile.TemporaryFile()
    parent = os.getpid()
    env = {**os.environ, "PREFECT_UI_ENABLED": "0",
           # what Prefect's own temporary server sets: fewer background services
           "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "error", "--lifespan", "on"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
        preexec_fn=(lambda: _die_with_parent(parent)) if sys.platform == "linux" else None)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if _healthy(url):
            return proc, url, log
        time.sleep(0.2)
    stop(proc)
    log.seek(0)
    tail = log.read().decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
    raise RuntimeError(f"the temporary Prefect server did not start ({tail[0]})")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def owned_server() -> Iterator[str | None]:
    """Run the body against a temporary server this process owns; yields its API URL (None
    when the user's own server is configured)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():
        yield None
        return
    proc, url, log = start()
    os.environ["PREFECT_API_URL"] = url  # for task-runner worker processes too
    try:
        with temporary_settings(updates={PREFECT_API_URL: url}):
            yield url
    finally:
        _drain_to(url)
        os.environ.pop("PREFECT_API_URL", None)
        stop(proc)
        log.close()


def _drain_to(url: str) -> None:
    """Send the run logs and events still queued in background workers while the server is
    up (else they fail later, printing "Error logging to API" after the command's own
    output)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogHandler
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: url}):
        APILogHandler().flush()
        EventsWorker.drain_all(timeout=5)


def run_flow(flow, *args, **kwargs):
    """Call a Prefect flow against this command's own temporary server."""
    with owned_server():
        return flow(*args, **kwargs)
