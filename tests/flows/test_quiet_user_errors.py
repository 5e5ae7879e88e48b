"""A user error raised inside a task reaches the CLI as one line: Prefect's run loggers do
not also print its traceback (llm4srs.cli.quiet_run_logs)."""

from __future__ import annotations

import logging

import pytest


def _failing_flow():
    from prefect import flow, task

    from pipeline.errors import InputError

    @task
    def check_column() -> None:
        raise InputError("items.parquet: column 'title' is empty")

    @flow
    def user_error_flow() -> None:
        check_column()

    return user_error_flow


def test_user_error_in_a_task_logs_no_traceback(prefect_harness, capfd):
    from llm4srs.cli import _DropUserErrors, quiet_run_logs
    from pipeline.errors import InputError

    run = _failing_flow()
    names = ("prefect.task_runs", "prefect.flow_runs")
    saved = {n: list(logging.getLogger(n).filters) for n in names}
    try:
        # Prefect re-installs its console handler when a flow starts, so look at the stream.
        with pytest.raises(InputError):
            run()
        assert "Traceback" in capfd.readouterr().err  # what the filter is there for

        quiet_run_logs((InputError,))
        quiet_run_logs((InputError,))  # idempotent: one filter per logger
        assert all(sum(isinstance(f, _DropUserErrors) for f in logging.getLogger(n).filters) == 1
                   for n in names)
        with pytest.raises(InputError, match="column 'title'"):
            run()
        err = capfd.readouterr().err
        assert "Traceback" not in err and "Finished in state Failed" in err
    finally:
        for n in names:
            logging.getLogger(n).filters[:] = saved[n]
