"""Stage 2 flow: prepare → split → train each (backbone, seed) → evaluate → report.

Tasks pass paths, hashes and small result rows; training runs are cached on content
(dataset fingerprint + resolved config hash + seed), so an unchanged re-run does no work.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from flows.common import prepare
from pipeline.config import load_train_config
from pipeline.data.dataset import Dataset
from pipeline.results import markdown, write_table
from pipeline.split import leave_one_out
from pipeline.train import train_srs


def _train_key(context, params) -> str:
    ds = Dataset.load(Path(params["dataset_path"]))
    cfg = load_train_config(params["backbone"], params["overrides"])
    cfg = cfg.model_copy(update={"seed": params["seed"]})
    return f"srs-{ds.fingerprint}-{cfg.backbone}-{cfg.config_hash()}-s{cfg.seed}"


@task(cache_key_fn=_train_key, persist_result=True, task_run_name="train-{backbone}-s{seed}")
def train(dataset_path: str, backbone: str, seed: int, overrides: dict, runs_dir: str,
          resume: bool = False) -> list[dict]:
    """Train and evaluate one (backbone, seed); returns its test result rows."""
    ds = Dataset.load(Path(dataset_path))
    cfg = load_train_config(backbone, overrides).model_copy(update={"seed": seed})
    split = leave_one_out(ds, neg_seed=cfg.neg_seed)
    run_dir = Path(runs_dir) / ds.name / f"{backbone}-{cfg.config_hash()}-s{seed}"
    result = train_srs(split, cfg, run_dir, resume=resume)
    get_run_logger().info("%s seed %d: best epoch %d, %.1f s", backbone, seed,
                          result.best_epoch, result.train_seconds)
    common = {"dataset": ds.name, "fingerprint": ds.fingerprint,
              "method": "pop" if backbone == "pop" else "id", "backbone": backbone,
              "embedding": None, "seed": seed, "split": "test",
              "train_seconds": result.train_seconds, "best_epoch": result.best_epoch,
              "config_hash": cfg.config_hash()}
    return [{**common, **row} for row in result.test_rows]


@flow(name="srs")
def srs_flow(dataset: str = "movielens-100k", backbones: list[str] = ["sasrec"],  # noqa: B006
             seeds: list[int] = [0], overrides: dict | None = None,  # noqa: B006
             data_dir: str = "data", runs_dir: str = "runs", resume: bool = False) -> str:
    """Train and evaluate the ID-only backbones; returns the results Parquet path."""
    path = prepare(dataset, data_dir)
    rows: list[dict] = []
    for backbone in backbones:
        for seed in seeds:
            rows += train(path, backbone, seed, overrides or {}, runs_dir, resume)
    name = Dataset.load(Path(path)).name
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = write_table(rows, Path(runs_dir) / name / f"results-{stamp}.parquet")
    create_markdown_artifact(markdown(rows, f"SRS on {name}"), key="srs-results",
                             description=f"ID-only backbones on {name}")
    return str(out)
