"""Stage 1 flow: the chosen generators (pipeline/methods/registry.py), in `needs` order.

One task runs any generator; it is cached on content (dataset fingerprint + resolved config
+ LLM + exact upstream versions, `pipeline.runs.generator_key`), so an unchanged re-run does
no heavy work and a new upstream version reruns what depends on it.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from flows.common import prepare
from flows.sharding import semantic_sharded
from pipeline.data.dataset import Dataset
from pipeline.methods.registry import get_generator, in_needs_order
from pipeline.runs import generator_key, generator_report, run_generator, store_versions_markdown


def _key(context, params) -> str:
    return generator_key(params["name"], params["dataset_path"], params["overrides"],
                         params["llm"], params["upstream"], params["store_root"])


@task(cache_key_fn=_key, persist_result=True, task_run_name="{name}")
def generate(name: str, dataset_path: str, overrides: dict, llm: dict | None,
             upstream: dict[str, str], store_root: str, runs_dir: str) -> dict[str, str]:
    """One generator → {kind: version ref}; resumes from its run folder's checkpoints."""
    refs = run_generator(name, dataset_path, overrides, llm, upstream, store_root, runs_dir)
    get_run_logger().info("wrote %s", ", ".join(refs.values()))
    return refs


@flow(name="embeddings")
def embeddings_flow(dataset: str = "movielens-100k", generators: list[str] = ["sasrec-id"],  # noqa: B006
                    configs: dict[str, dict] | None = None, llm: dict | None = None,
                    data_dir: str = "data", store_root: str = "store", runs_dir: str = "runs",
                    refresh: bool = False, shards: int = 1, task_runner: str = "threads",
                    runner_address: str | None = None,
                    workers: int | None = None) -> dict[str, str]:
    """Run the chosen generators and what they need; returns {kind: version ref}.

    `configs` maps a generator name to its overrides. `refresh` recomputes instead of
    reusing the task cache (e.g. after deleting versions by hand). `shards` > 1 splits
    `semantic` into that many tasks on `task_runner` (threads | dask | ray; same bytes).
    """
    path = prepare(dataset, data_dir)
    configs = configs or {}
    written: dict[str, dict[str, str]] = {}
    for name in in_needs_order(generators):
        upstream = {k: v for need in get_generator(name).needs for k, v in written[need].items()}
        if name == "semantic" and shards > 1:
            written[name] = semantic_sharded.with_options(refresh_cache=refresh)(
                path, configs.get(name, {}), llm, store_root, shards, task_runner,
                runner_address, workers)
        else:
            written[name] = generate.with_options(refresh_cache=refresh)(
                name, path, configs.get(name, {}), llm, upstream, store_root, runs_dir)
        report = generator_report(name, store_root, written[name])
        if report:
            create_markdown_artifact(report, key=name, description=f"{name} report")
    refs = {kind: ref for out in written.values() for kind, ref in out.items()}
    create_markdown_artifact(store_versions_markdown(Dataset.load(Path(path)).name, refs),
                             key="embeddings", description="store versions")
    return refs
