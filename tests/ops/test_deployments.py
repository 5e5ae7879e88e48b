"""Deployments declared in code, and the task-runner choice: no server, no flow run."""

from __future__ import annotations

import importlib.util
import inspect
import json

import pytest

from flows import deployments as dep
from pipeline.errors import InputError

pytestmark = pytest.mark.ops


def test_every_deployment_resolves_to_a_flow_with_its_parameters() -> None:
    resolved = {r.spec.name: r for r in dep.resolve_all()}
    assert list(resolved) == [s.name for s in dep.SPECS]
    core = resolved["srs-nightly"]
    assert core.flow is not None and core.flow.name == "srs" and core.skipped is None
    assert core.parameters["request"]["backbones"] == ["sasrec", "gru4rec", "bert4rec"]
    for r in resolved.values():
        if r.flow is not None:  # declared parameters are all taken by the flow
            assert set(r.parameters) <= set(inspect.signature(r.flow.fn).parameters)
    assert resolved["embeddings-weekly"].flow.name == "embeddings"


def test_optional_flow_missing_is_skipped_not_fatal(monkeypatch) -> None:
    extra = dep.DeploymentSpec("ghost", "flows.not_written_yet:ghost_flow", "0 0 * * *",
                               {"dataset": "x"}, optional=True)
    fussy = dep.DeploymentSpec("srs-odd", "flows.srs:srs_flow", None,
                               {"request": {"dataset": "synthetic"}, "no_such_param": 1})
    monkeypatch.setattr(dep, "SPECS", (*dep.SPECS[:2], extra, fussy))
    deployments, resolved = dep.build(["srs-nightly", "ghost", "srs-odd"], schedules=False)
    assert [d.name for d in deployments] == ["srs-nightly", "srs-odd"]
    ghost = next(r for r in resolved if r.spec.name == "ghost")
    assert ghost.flow is None and "not importable" in ghost.skipped
    odd = next(r for r in resolved if r.spec.name == "srs-odd")
    assert odd.parameters == {"request": {"dataset": "synthetic"}} and "no_such_param" in odd.note
    assert all(not d.schedules for d in deployments)
    required = dep.DeploymentSpec("broken", "flows.not_written_yet:x", None)
    monkeypatch.setattr(dep, "SPECS", (required,))
    with pytest.raises(ImportError):
        dep.build()


def test_schedules_are_cron_and_only_filters() -> None:
    deployments, _ = dep.build(["srs-nightly", "embeddings-weekly"])
    crons = {d.name: d.schedules[0].schedule.cron for d in deployments}
    assert crons == {"srs-nightly": "0 3 * * *", "embeddings-weekly": "0 1 * * 0"}
    with pytest.raises(InputError, match="unknown deployment nope"):
        dep.build(["nope"])


def test_serve_list_prints_the_deployments(capsys) -> None:
    from typer.testing import CliRunner

    from llm4srs.cli import app

    out = CliRunner().invoke(app, ["serve", "--list", "--only", "srs-nightly", "--no-schedules"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.stdout)
    assert [(r["name"], r["flow"], r["cron"]) for r in rows] == [("srs-nightly", "srs", None)]


def test_task_runner_choice() -> None:
    from prefect.task_runners import ThreadPoolTaskRunner

    from flows.sharding import check_runner, make_task_runner

    assert isinstance(make_task_runner("threads", workers=3), ThreadPoolTaskRunner)
    with pytest.raises(InputError, match="unknown task runner"):
        check_runner("spark")
    if importlib.util.find_spec("prefect_dask"):
        local = make_task_runner("dask", workers=2)
        assert local.cluster_kwargs == {"n_workers": 2, "threads_per_worker": 1,
                                        "processes": True, "dashboard_address": None}
        assert make_task_runner("dask", address="tcp://10.0.0.1:8786").address == "tcp://10.0.0.1:8786"
    if importlib.util.find_spec("prefect_ray") is None:
        with pytest.raises(InputError, match=r"pip install -e '\.\[ray\]'"):
            make_task_runner("ray")


def test_serve_refuses_without_a_server() -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(restore_defaults={PREFECT_API_URL}), \
            pytest.raises(InputError, match="prefect server start"):
        dep.serve(["srs-nightly"])
