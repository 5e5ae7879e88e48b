"""Tasks shared by several flows."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from pipeline.data.config import resolve_dataset
from pipeline.data.prepare import prepare_dataset


def is_io_error(task, run, state) -> bool:
    try:
        state.result()
    except OSError:
        return True
    except Exception:
        return False
    return False


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5, retry_condition_fn=is_io_error)
def prepare(dataset: str, data_dir: str, force: bool = False) -> str:
    """Prepare (or reuse) a dataset; returns its folder. Retried on I/O errors only."""
    return str(prepare_dataset(resolve_dataset(dataset), Path(data_dir), force=force).path)
