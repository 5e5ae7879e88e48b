"""Fault proof for the orchestration: the SRS flow is SIGKILLed after its first task's
result is persisted and while the second task trains; the same command again serves the
first task from Prefect's cache (state "Cached", its run folder untouched) and resumes the
second from its last checkpoint.

Two Prefect processes with no server (~30 s each to start their temporary backend), one
PREFECT_HOME for both so the result storage (the cache) outlives the kill.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_kill_resume import finish, kill_when, start

pytestmark = [pytest.mark.ops, pytest.mark.slow]
OVERRIDES = {"epochs": 12, "patience": 100, "model.dim": 16, "model.max_len": 20,
             "batch_size": 32, "threads": 1, "device": "cpu"}


def test_flow_killed_between_tasks_reruns_from_cache_and_resumes(tmp_path, monkeypatch):
    from pipeline import checkpoint

    home = tmp_path / "prefect"
    for key in [k for k in os.environ if k.startswith("PREFECT_")]:
        monkeypatch.delenv(key)  # no API URL or harness settings from this process
    monkeypatch.setenv("PREFECT_HOME", str(home))
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    monkeypatch.setenv("DO_NOT_TRACK", "1")
    monkeypatch.setenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    monkeypatch.setenv("PREFECT_LOGGING_LEVEL", "WARNING")
    args = {"data_dir": str(tmp_path / "data"), "runs_dir": str(tmp_path / "runs"),
            "overrides": OVERRIDES, "out": str(tmp_path / "first.json")}
    storage = home / "storage"
    runs = tmp_path / "runs"

    def sasrec_last() -> Path | None:
        return next(runs.glob("*/sasrec-*/last.pt"), None)

    def pop_persisted_and_sasrec_midway() -> bool:
        last = sasrec_last()
        return (storage.is_dir() and any(storage.iterdir()) and last is not None
                and checkpoint.load(last)["state"]["epoch"] >= 2)

    proc = start("flow", args, tmp_path / "first.log")
    kill_when(proc, pop_persisted_and_sasrec_midway, tmp_path / "first.log",
              timeout=1200)  # generous: a loaded 2-core machine took over 400 s
    persisted = sorted(p.name for p in storage.iterdir())
    assert len(persisted) == 1 and "-pop-" in persisted[0]  # pop's result only
    killed_at = checkpoint.load(sasrec_last())["state"]["epoch"]
    assert killed_at < 12
    pop_config = next(runs.glob("*/pop-*/config.json"))
    stamp = pop_config.stat().st_mtime_ns

    again = {**args, "out": str(tmp_path / "second.json")}
    second = finish(start("flow", again, tmp_path / "second.log"), again, tmp_path / "second.log",
                    timeout=1200)
    states = {name.split("-")[1]: state for name, state in second["task_states"].items()
              if name.startswith("train-")}  # task runs are named train-<backbone>-…
    assert states == {"pop": "Cached", "sasrec": "Completed"}, second["task_states"]
    assert pop_config.stat().st_mtime_ns == stamp  # pop was not recomputed
    calls = second["train_calls"]
    assert [c["backbone"] for c in calls] == ["sasrec"]  # only the unfinished task ran
    assert calls[0]["resume"] and calls[0]["start_epoch"] >= killed_at
    assert Path(second["results"]).is_file()
    assert len(list(storage.iterdir())) == 2
