"""E4SRec flow: prepare → resolve `items/sasrec-id` → train each seed → results → report.

The train task is cached on content (`pipeline.methods.e4srec.run.seed_key`: dataset
fingerprint + LLM spec + resolved config + seed + the exact ID-table version), so an
unchanged re-run trains nothing, and a new `items/sasrec-id` version retrains. Each seed
also exports the item head as `items/e4srec-head`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import MissingContextError

from embeddings_store import EmbeddingStore
from flows.common import prepare
from pipeline.data.dataset import Dataset
from pipeline.llm import LLMSpec
from pipeline.methods.e4srec.run import report_markdown, resolve_id_table, seed_key, train_seed
from pipeline.results import write_table
from pipeline.runs import results_path


def _logger() -> logging.Logger | logging.LoggerAdapter:
    try:
        return get_run_logger()
    except MissingContextError:  # task logic called through `.fn` (tests)
        return logging.getLogger(__name__)


def _train_key(context, params) -> str:
    return seed_key(params["dataset_path"], params["llm"], params["overrides"], params["seed"],
                    params["id_ref"], params["store_root"])


@task(cache_policy=NO_CACHE)
def resolve_ids(dataset_path: str, store_root: str) -> str:
    """The exact `items/sasrec-id` version for this dataset (one-line error when missing)."""
    name = Dataset.load(Path(dataset_path)).name
    return str(resolve_id_table(EmbeddingStore(store_root), name))


@task(cache_key_fn=_train_key, persist_result=True, task_run_name="e4srec-s{seed}")
def train(dataset_path: str, id_ref: str, llm: dict, overrides: dict, seed: int, runs_dir: str,
          store_root: str, resume: bool = False) -> dict:
    """Train, evaluate and export one seed; returns {rows: test result rows, info: figures}."""
    out = train_seed(dataset_path, id_ref, llm, overrides, seed, runs_dir, store_root, resume)
    _logger().info(out.pop("summary"))
    return out


@flow(name="e4srec")
def e4srec_flow(dataset: str = "movielens-100k", llm: dict | None = None,
                seeds: list[int] = [0], overrides: dict | None = None,  # noqa: B006
                data_dir: str = "data", runs_dir: str = "runs", store_root: str = "store",
                resume: bool = False) -> str:
    """Train and evaluate E4SRec on the stored SASRec ID table; returns the results Parquet path."""
    path = prepare(dataset, data_dir)
    id_ref = resolve_ids(path, store_root)
    spec = LLMSpec(**(llm or {})).model_dump(mode="json")
    rows: list[dict] = []
    infos = []
    for seed in seeds:
        out = train(path, id_ref, spec, overrides or {}, seed, runs_dir, store_root, resume)
        rows += out["rows"]
        infos.append((seed, out["info"]))
    name = Dataset.load(Path(path)).name
    out_path = write_table(rows, results_path(runs_dir, name, "results-e4srec"))
    create_markdown_artifact(report_markdown(rows, infos, name), key="e4srec-results",
                             description=f"E4SRec on {name}")
    return str(out_path)
