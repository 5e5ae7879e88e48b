"""A user error raised inside a task reaches the CLI as one line: Prefect's run loggers do
not also print its traceback (llm4srs.cli.quiet_run_logs)."""

from __future__ import annotations

import logging

import pytest

RUN_LOGGERS = ("prefect.task_runs", "prefect.flow_runs")


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _failing_flow(recorder: _Recorder):
    from prefect import flow, task

    from pipeline.errors import InputError

    @task
    def check_column() -> None:
        # Attached here, after Prefect has (re)configured logging for this run.
        for name in RUN_LOGGERS:
            logging.getLogger(name).addHandler(recorder)
        raise InputError("items.parquet: column 'title' is empty")

    @flow
    def user_error_flow() -> None:
        check_column()

    return user_error_flow


def test_user_error_in_a_task_logs_no_traceback(prefect_harness):
    from llm4srs.cli import _DropUserErrors, quiet_run_logs
    from pipeline.errors import InputError

    recorder = _Recorder()
    run = _failing_flow(recorder)
    saved = {n: list(logging.getLogger(n).filters) for n in RUN_LOGGERS}
    for name in RUN_LOGGERS:  # an earlier in-process `main()` may have installed it already
        logger = logging.getLogger(name)
        logger.filters[:] = [f for f in logger.filters if not isinstance(f, _DropUserErrors)]
    try:
        with pytest.raises(InputError):
            run()
        # What the filter is there for: Prefect logs the failure with its traceback.
        assert "prefect.task_runs" in {r.name for r in recorder.records if r.exc_info}

        recorder.records.clear()
        quiet_run_logs((InputError,))
        quiet_run_logs((InputError,))  # idempotent: one filter per logger
        assert all(sum(isinstance(f, _DropUserErrors) for f in logging.getLogger(n).filters) == 1
                   for n in RUN_LOGGERS)
        with pytest.raises(InputError, match="column 'title'"):
            run()
        # Neither the traceback nor the "Finished in state Failed(… InputError: …)" line that
        # repeats it: the CLI prints the error once, as one line. (The run's state in
        # Prefect's API still says Failed.)
        assert recorder.records == []
    finally:
        for name in RUN_LOGGERS:
            logger = logging.getLogger(name)
            logger.filters[:] = saved[name]
            logger.removeHandler(recorder)


def test_other_errors_keep_their_traceback():
    from llm4srs.cli import _DropUserErrors
    from pipeline.errors import InputError

    keep = _DropUserErrors((InputError,))

    def record(exc: BaseException) -> logging.LogRecord:
        return logging.LogRecord("prefect.task_runs", logging.ERROR, __file__, 1, "failed", (),
                                 (type(exc), exc, None))

    assert keep.filter(record(ValueError("a bug"))) and not keep.filter(record(InputError("bad")))
