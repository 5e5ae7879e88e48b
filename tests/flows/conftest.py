from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory):
    """One temporary Prefect backend for every flow test (~30–45 s to start)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield
