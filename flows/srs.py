"""Stage 2 flow: prepare → train each (backbone, seed) → results table, plot, artifact.

Tasks pass paths, hashes and small result rows; training runs are cached on content
(`pipeline.runs.srs_key`: dataset fingerprint + resolved config + seed + stored inputs), so
an unchanged re-run does no work. What a run is (method dispatch, run folder, result rows)
lives in pipeline/runs.py.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from flows.common import prepare
from pipeline.data.dataset import Dataset
from pipeline.plots import head_tail_plot
from pipeline.results import markdown, write_table
from pipeline.runs import results_path, srs_key, train_one
from pipeline.store_io import resolve_kind


def _train_key(context, params) -> str:
    return srs_key(params["dataset_path"], params["backbone"], params["seed"],
                   params["overrides"], params["runs_dir"], params.get("embedding"),
                   params.get("embedding_mode", "init"), params.get("method") or "srs",
                   params.get("user_embedding"))


@task(cache_key_fn=_train_key, persist_result=True, task_run_name="train-{backbone}-{method}-s{seed}")
def train(dataset_path: str, backbone: str, seed: int, overrides: dict, runs_dir: str,
          resume: bool = False, embedding: str | None = None, embedding_mode: str = "init",
          store_root: str = "store", method: str = "srs",
          user_embedding: str | None = None) -> list[dict]:
    """Train and evaluate one (backbone, seed); returns its test result rows."""
    rows, summary = train_one(dataset_path, backbone, seed, overrides, runs_dir, resume,
                              embedding, embedding_mode, store_root, method, user_embedding)
    get_run_logger().info(summary)
    return rows


@flow(name="srs")
def srs_flow(dataset: str = "movielens-100k", backbones: list[str] = ["sasrec"],  # noqa: B006
             seeds: list[int] = [0], overrides: dict | None = None,  # noqa: B006
             data_dir: str = "data", runs_dir: str = "runs", resume: bool = False,
             embedding: str | None = None, embedding_mode: str = "init",
             store_root: str = "store", method: str = "srs",
             user_embedding: str | None = None, refresh: bool = False) -> str:
    """Train and evaluate backbones (ID-only, or on a store embedding, or LLM-ESR with
    `method="llmesr"`); returns the results Parquet path. `refresh` trains again instead of
    reusing cached runs."""
    path = prepare(dataset, data_dir)
    ds = Dataset.load(Path(path))
    ref = resolve_kind(ds, store_root, embedding, "items") if embedding else None
    uref = resolve_kind(ds, store_root, user_embedding, "users") if user_embedding else None
    rows: list[dict] = []
    for backbone in backbones:
        for seed in seeds:
            rows += train.with_options(refresh_cache=refresh)(
                path, backbone, seed, overrides or {}, runs_dir, resume, ref, embedding_mode,
                store_root, method=method, user_embedding=uref)
    out = write_table(rows, results_path(runs_dir, ds.name))
    plot = head_tail_plot(rows, out.with_suffix(".png"), title=f"{ds.name}: full NDCG@10 by group")
    get_run_logger().info("results %s, head/tail plot %s", out, plot)
    create_markdown_artifact(markdown(rows, f"SRS on {ds.name}") + f"\n\nPlot: `{plot}`",
                             key="srs-results", description=f"backbones on {ds.name}")
    return str(out)
