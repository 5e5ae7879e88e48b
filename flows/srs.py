"""Stage 2 flow: a checked TrainRequest → train each (backbone, seed) → results table,
plot, artifact. (Checking the request prepared the dataset.)

Tasks pass paths, hashes and small result rows; training runs are cached on content
(`pipeline.runs.srs_key`: dataset fingerprint + resolved config + seed + stored inputs), so
an unchanged re-run does no work. What a run is (method dispatch, run folder, result rows)
lives in pipeline/runs.py.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from pipeline.config import TrainConfig
from pipeline.data.dataset import Dataset
from pipeline.html_report import write_html
from pipeline.plots import head_tail_plot
from pipeline.requests import TrainRequest
from pipeline.results import PROTOCOL_NOTE, markdown, summarize, write_table
from pipeline.runs import results_path, run_folder_gone, srs_key, train_one
from pipeline.store_io import resolve_kind


def _train_key(context, params) -> str:
    return srs_key(params["dataset_path"], params["cfg"], params["seed"], params["request"],
                   params["embedding"], params["user_embedding"])


@task(cache_key_fn=_train_key, persist_result=True,
      task_run_name="train-{cfg.backbone}-{request.method}-s{seed}")
def train(dataset_path: str, cfg: TrainConfig, seed: int, request: TrainRequest,
          embedding: str | None, user_embedding: str | None) -> list[dict]:
    """Train and evaluate one (backbone config, seed); returns its test result rows.
    `embedding`/`user_embedding`: the request's kinds resolved to exact versions."""
    rows, summary = train_one(dataset_path, cfg, seed, request, embedding, user_embedding)
    get_run_logger().info(summary)
    return rows


@flow(name="srs")
def srs_flow(request: TrainRequest) -> str:
    """Train and evaluate the request's backbones (ID-only, or on a store embedding, or
    LLM-ESR with `method="llmesr"`); returns the results Parquet path. A request the CLI
    checked arrives with its configs; one from a deployment is checked here, once."""
    if not request.is_checked:
        request = request.checked()  # prepares the dataset, as the CLI's check did
    path = request.dataset_path
    ds = Dataset.load(Path(path))
    store, emb, uemb = request.store_root, request.embedding, request.user_embedding
    ref = resolve_kind(ds, store, emb, "items") if emb else None
    uref = resolve_kind(ds, store, uemb, "users") if uemb else None
    rows: list[dict] = []
    for backbone in request.backbones:
        for seed in request.seeds:
            cfg = request.configs[backbone]
            stale = run_folder_gone(ds.name, cfg, seed, request, ref, uref)
            rows += train.with_options(refresh_cache=request.refresh or stale)(
                path, cfg, seed, request, ref, uref)
    out = write_table(rows, results_path(request.runs_dir, ds.name))
    plot = head_tail_plot(rows, out.with_suffix(".png"), title=f"{ds.name}: full NDCG@10 by group")
    page = write_html(out.with_suffix(".html"), f"SRS on {ds.name}", summarize(rows),
                      [PROTOCOL_NOTE], plot,
                      {b: c.model_dump(mode="json") for b, c in request.configs.items()},
                      {"dataset": f"{ds.name} ({ds.fingerprint})", "items": ref, "users": uref,
                       "runs": ", ".join(dict.fromkeys(r["run"] for r in rows if r.get("run")))})
    get_run_logger().info("results %s, head/tail plot %s, report %s", out, plot, page)
    create_markdown_artifact(markdown(rows, f"SRS on {ds.name}") + f"\n\nPlot: `{plot}`",
                             key="srs-results", description=f"backbones on {ds.name}")
    return str(out)
