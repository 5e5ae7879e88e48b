"""Scale-out for stage 1: the semantic generator in shards, on a chosen Prefect task runner.

`threads` (default) runs shards in this process; `dask` and `ray` hand them to those
engines through `prefect-dask` / `prefect-ray` (extras `.[dask]`, `.[ray]`): a temporary
local cluster, or an existing one by address (`tcp://scheduler:8786`, `ray://head:10001`).
Workers need the repository installed, the store root and dataset folder on a shared
filesystem, and the model (cache) where `LLMSpec` points. The pipeline decides what runs
per shard (`pipeline/methods/semantic/sharded.py`); this module only maps it onto tasks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from embeddings_store import EmbeddingStore, StagedVersion
from flows.common import is_io_error
from pipeline.data.dataset import Dataset
from pipeline.errors import InputError
from pipeline.methods.semantic.sharded import centre_part, encode_part, write_semantic_sharded
from pipeline.methods.semantic.write import SemanticConfig
from pipeline.runs import generator_config, generator_key

RunnerKind = Literal["threads", "dask", "ray"]
RUNNERS: tuple[str, ...] = ("threads", "dask", "ray")


def check_runner(kind: str) -> None:
    """Fail fast (before any flow starts) on an unknown runner or a missing extra."""
    if kind not in RUNNERS:
        raise InputError(f"unknown task runner {kind!r}; choose from {', '.join(RUNNERS)}")
    module = {"dask": "prefect_dask", "ray": "prefect_ray"}.get(kind)
    if module is None:
        return
    try:
        __import__(module)
    except ImportError:
        raise InputError(f"task runner {kind!r} needs {module.replace('_', '-')}: "
                         f"pip install -e '.[{kind}]'") from None


def make_task_runner(kind: str = "threads", address: str | None = None,
                     workers: int | None = None) -> TaskRunner:
    """A task runner; `address` joins a running Dask/Ray cluster, else a local one starts
    with `workers` single-threaded worker processes (Dask) or CPUs (Ray)."""
    check_runner(kind)
    if kind == "threads":
        return ThreadPoolTaskRunner(max_workers=workers)
    if kind == "dask":
        from prefect_dask import DaskTaskRunner

        if address:
            return DaskTaskRunner(address=address)
        # Processes, one thread each: a worker's torch gets the whole core, and a crash or
        # a leak stays in its process. No dashboard (bokeh is not installed anyway).
        return DaskTaskRunner(cluster_kwargs={"n_workers": workers or 2, "threads_per_worker": 1,
                                              "processes": True, "dashboard_address": None})
    from prefect_ray import RayTaskRunner

    init = {} if address or not workers else {"num_cpus": workers}
    return RayTaskRunner(address=address, init_kwargs=init)


@task(cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5, retry_condition_fn=is_io_error,
      task_run_name="encode-{entity}-{part}")
def encode_part_task(dataset_path: str, entity: str, config: SemanticConfig, staged: StagedVersion,
                     part: int, cache_dir: str | None = None) -> dict[str, Any]:
    return encode_part(dataset_path, entity, config, staged, part, cache_dir)  # type: ignore[arg-type]


@task(cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5, retry_condition_fn=is_io_error,
      task_run_name="centre-{part}")
def centre_part_task(staged: StagedVersion, part: int, mean: list[float], n: int) -> list[float]:
    return centre_part(staged, part, mean, n)


_TASKS = {encode_part: encode_part_task, centre_part: centre_part_task}


def _on_runner(fn, calls: list[dict[str, Any]]) -> list[Any]:
    """The pipeline's mapper: one task per call on the flow's task runner, results in order.
    A part rerun after a retry replaces its file, so retries are safe."""
    futures = [_TASKS[fn].submit(**kwargs) for kwargs in calls]
    return [f.result() for f in futures]


@flow(name="semantic-sharded")
def semantic_sharded_flow(dataset_path: str, config: dict, store_root: str,
                          shards: int = 2) -> dict[str, str]:
    """Items (and users) in `shards` parts; same kinds and bytes as the `semantic` task."""
    ds = Dataset.load(Path(dataset_path))
    refs = write_semantic_sharded(ds, SemanticConfig(**config), EmbeddingStore(store_root),
                                  shards, _on_runner)
    get_run_logger().info("wrote %s", ", ".join(map(str, refs.values())))
    return {ref.kind: str(ref) for ref in refs.values()}


def _key(context, params) -> str:
    # Shard count and runner are not in the key: they do not change a single byte.
    return "sharded-" + generator_key("semantic", params["dataset_path"], params["overrides"],
                                      params["llm"], {}, params["store_root"])


@contextlib.contextmanager
def _api_for_workers(kind: str) -> Iterator[None]:
    """Dask/Ray workers get this flow's settings with each task. Under the embedded backend
    (no PREFECT_API_URL) every worker process would start a temporary Prefect server of its
    own (30 s to minutes each on a loaded machine, runs recorded apart), so point them at
    this process's temporary server. It listens on 127.0.0.1: a cluster on other machines
    needs a real server (`prefect server start`, PREFECT_API_URL) anyway."""
    if kind == "threads" or PREFECT_API_URL.value():
        yield
        return
    with get_client(sync_client=True) as client:
        url = str(client.api_url).rstrip("/")
    with temporary_settings(updates={PREFECT_API_URL: url}):
        yield


@task(cache_key_fn=_key, persist_result=True)
def semantic_sharded(dataset_path: str, overrides: dict, llm: dict | None, store_root: str,
                     shards: int, task_runner: str = "threads", runner_address: str | None = None,
                     workers: int | None = None) -> dict[str, str]:
    """Cached on content like `semantic`; runs the sharded flow on the chosen runner."""
    config = generator_config("semantic", overrides, llm)
    runner = make_task_runner(task_runner, runner_address, workers)
    with _api_for_workers(task_runner):
        return semantic_sharded_flow.with_options(task_runner=runner)(
            dataset_path, config, store_root, shards)
