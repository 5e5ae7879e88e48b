"""`llm4srs serve` against a REAL local Prefect server: a triggered deployment run completes.

Starts `prefect server start` on loopback (free port, temporary PREFECT_HOME), then
`llm4srs serve --only srs-nightly --no-schedules` against it, creates one run of the
deployment through the REST API with tiny parameters (synthetic data, `pop` backbone),
waits for COMPLETED and checks the rows it wrote; stops serve (SIGTERM) before the server,
and registers the same deployment with a process work pool (`flows.deployments.deploy`).
Every process it starts runs in its own session and is killed by group on the way out,
also when an assertion fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ops, pytest.mark.slow]

BIN = Path(sys.executable).parent
START_TIMEOUT = 180  # a loaded 2-core machine: server and serve each take 20-60 s to start
RUN_TIMEOUT = 240


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, n: int = 3000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else "(no log)"


@contextlib.contextmanager
def _started(cmd: list[str], env: dict, cwd: Path, log: Path) -> Iterator[subprocess.Popen]:
    """Run `cmd` in its own session; on exit SIGTERM it, then SIGKILL its whole group."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # children it left (flow-run subprocesses)
        proc.wait(timeout=30)


def _api(base: str, path: str, body: dict | None = None) -> tuple[int, dict | list | None]:
    """One REST call; 429/502/503 (a busy SQLite backend answers 503) are retried like
    Prefect's own client does, for up to ~30 s."""
    data = None if body is None else json.dumps(body).encode()
    for delay in (1, 2, 4, 8, 15, 0):
        req = urllib.request.Request(f"{base}{path}", data=data,
                                     method="POST" if body is not None else "GET",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            if e.code not in (429, 502, 503) or not delay:
                return e.code, None
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return 0, None
        time.sleep(delay)
    return 0, None


def _wait(what: str, probe, timeout: float, proc: subprocess.Popen, log: Path):
    """Poll `probe()` until it returns something truthy; fail early if `proc` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = probe()
        if got:
            return got
        if proc.poll() is not None:
            pytest.fail(f"{what}: process exited with {proc.returncode}\n{_tail(log)}")
        time.sleep(1)
    pytest.fail(f"{what}: not within {timeout} s\n{_tail(log)}")


def test_serve_runs_a_triggered_deployment_to_completion(tmp_path: Path) -> None:
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({
        "PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
        "PREFECT_RUNNER_POLL_FREQUENCY": "2", "PREFECT_LOGGING_LEVEL": "WARNING",
        "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
    })
    server_log, serve_log = tmp_path / "server.log", tmp_path / "serve.log"
    server_cmd = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with _started(server_cmd, env, work, server_log) as server:
        _wait("prefect server health", lambda: _api(api, "/health") == (200, True),
              START_TIMEOUT, server, server_log)
        serve_cmd = [str(BIN / "llm4srs"), "serve", "--only", "srs-nightly", "--no-schedules"]
        with _started(serve_cmd, env, work, serve_log) as serve:
            deployment = _wait(
                "deployment srs/srs-nightly registered",
                lambda: (lambda r: r[1] if r[0] == 200 else None)(
                    _api(api, "/deployments/name/srs/srs-nightly")),
                START_TIMEOUT, serve, serve_log)
            assert deployment["schedules"] == []  # --no-schedules
            assert deployment["parameters"]["request"]["backbones"] == ["sasrec", "gru4rec", "bert4rec"]
            # Relative folders: flow runs start in serve's working directory.
            params = {"request": {"dataset": "synthetic", "backbones": ["pop"], "seeds": [0],
                                  "data_dir": "data", "runs_dir": "runs", "store_root": "store"}}
            code, run = _api(api, f"/deployments/{deployment['id']}/create_flow_run",
                             {"parameters": params})
            assert code == 201, f"create_flow_run answered {code}"

            def finished():
                _, fr = _api(api, f"/flow_runs/{run['id']}")
                kind = fr and fr.get("state", {}).get("type")
                return fr if kind in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") else None

            final = _wait("flow run finished", finished, RUN_TIMEOUT, serve, serve_log)
            assert final["state"]["type"] == "COMPLETED", \
                f"{final['state']}\n{_tail(serve_log)}"
            assert final["deployment_id"] == deployment["id"]
            serve.send_signal(signal.SIGTERM)
            assert serve.wait(timeout=60) is not None  # serve stops on SIGTERM, server still up
        assert server.poll() is None
        _check_work_pool_deploy(api)

    _check_results(work)


def _check_work_pool_deploy(api: str) -> None:
    """`deploy` registers the same deployment with a process work pool, schedule included
    (no worker is started: that is `prefect worker start --pool cpu-pool`)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.deployments import deploy

    code, _ = _api(api, "/work_pools/", {"name": "cpu-pool", "type": "process"})
    assert code == 201, f"work pool create answered {code}"
    with temporary_settings(updates={PREFECT_API_URL: api}):
        (dep_id,) = deploy("cpu-pool", ["srs-nightly"])
    code, got = _api(api, f"/deployments/{dep_id}")
    assert code == 200 and got["work_pool_name"] == "cpu-pool"
    assert got["entrypoint"] == "flows/srs.py:srs_flow"
    assert [s["schedule"]["cron"] for s in got["schedules"]] == ["0 3 * * *"]


def _check_results(work: Path) -> None:
    """The run wrote pop's test rows under serve's cwd, equal to pop computed here."""
    import polars as pl

    from pipeline.config import load_train_config
    from pipeline.data.config import resolve_dataset
    from pipeline.data.prepare import prepare_dataset
    from pipeline.evaluate import pick
    from pipeline.split import leave_one_out
    from pipeline.train import train_srs

    tables = sorted(work.glob("runs/*/results-*.parquet"))
    assert len(tables) == 1, sorted(p.relative_to(work) for p in work.rglob("*"))[:20]
    rows = pl.read_parquet(tables[0]).to_dicts()
    assert {r["backbone"] for r in rows} == {"pop"} and {r["seed"] for r in rows} == {0}
    ds = prepare_dataset(resolve_dataset("synthetic"), work / "data")  # reuses the run's folder
    cfg = load_train_config("pop", {})
    expected = train_srs(leave_one_out(ds, neg_seed=cfg.neg_seed), cfg, work / "check").test_rows
    for metric in ("full/ndcg@10", "full/hr@10"):
        got = pick(rows, "full", "overall", metric.split("/")[1])
        assert got == pytest.approx(pick(expected, "full", "overall", metric.split("/")[1]))
        assert 0 < got < 1
