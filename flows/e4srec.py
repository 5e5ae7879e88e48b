"""E4SRec flow: prepare → resolve `items/sasrec-id` → train each seed → results → report.

The train task is cached on content (dataset fingerprint + LLM spec + resolved config +
seed + the exact ID-table version), so an unchanged re-run trains nothing, and a new
`items/sasrec-id` version retrains. It also exports the item head as `items/e4srec-head`.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import MissingContextError

from embeddings_store import EmbeddingStore
from flows.common import prepare
from pipeline.data.dataset import Dataset, read_fingerprint
from pipeline.llm import LLMSpec
from pipeline.methods.e4srec import E4SRecConfig, load_e4srec_config
from pipeline.methods.e4srec.run import head_metrics, resolve_id_table, run_e4srec
from pipeline.results import markdown, write_table


def _logger() -> logging.Logger | logging.LoggerAdapter:
    try:
        return get_run_logger()
    except MissingContextError:  # task logic called through `.fn` (tests)
        return logging.getLogger(__name__)


def _config(overrides: dict, seed: int) -> E4SRecConfig:
    return load_e4srec_config(overrides).model_copy(update={"seed": seed})


def _digest(spec: LLMSpec, cfg: E4SRecConfig, id_ref: str) -> str:
    payload = f"{spec.model_dump_json()}|{cfg.config_hash()}|{id_ref}"
    return hashlib.sha256(payload.encode()).hexdigest()[:10]


def _train_key(context, params) -> str:
    fp = read_fingerprint(Path(params["dataset_path"]))
    spec, cfg = LLMSpec(**params["llm"]), _config(params["overrides"], params["seed"])
    return f"e4srec-{fp}-{_digest(spec, cfg, params['id_ref'])}-s{cfg.seed}-{params['store_root']}"


@task(cache_policy=NO_CACHE)
def resolve_ids(dataset_path: str, store_root: str) -> str:
    """The exact `items/sasrec-id` version for this dataset (one-line error when missing)."""
    name = Dataset.load(Path(dataset_path)).name
    return str(resolve_id_table(EmbeddingStore(store_root), name))


@task(cache_key_fn=_train_key, persist_result=True, task_run_name="e4srec-s{seed}")
def train(dataset_path: str, id_ref: str, llm: dict, overrides: dict, seed: int, runs_dir: str,
          store_root: str, resume: bool = False) -> dict:
    """Train, evaluate and export one seed; returns {rows: test result rows, info: figures}."""
    ds = Dataset.load(Path(dataset_path))
    spec, cfg = LLMSpec(**llm), _config(overrides, seed)
    run_dir = Path(runs_dir) / ds.name / f"e4srec-{spec.short_name}-{_digest(spec, cfg, id_ref)}-s{seed}"
    info = run_e4srec(ds, cfg, spec, EmbeddingStore(store_root), run_dir, id_ref=id_ref,
                      resume=resume)
    result = info["result"]
    _logger().info("e4srec seed %d: %d steps (best %d), %.1f s, budget stop %s, head %s",
                          seed, result.steps_run, result.best_step, result.total_seconds,
                          result.stopped_by_budget, info["head_ref"])
    common = {"dataset": ds.name, "fingerprint": ds.fingerprint, "method": "e4srec",
              "backbone": spec.short_name, "embedding": id_ref, "user_embedding": None,
              "seed": seed, "split": "test",
              "train_seconds": result.train_seconds, "best_epoch": result.best_epoch,
              "config_hash": cfg.config_hash()}
    figures = head_metrics(result, cfg) | {"head_ref": info["head_ref"], "run_dir": str(run_dir),
                                           "adapter_hash": info["adapter_hash"]}
    return {"rows": [{**common, **row} for row in result.test_rows], "info": figures}


def _report(rows: list[dict], infos: list[dict], name: str) -> str:
    lines = [markdown(rows, f"E4SRec on {name}"), "", "| seed | steps (planned) | samples | "
             "budget (min) | used (min) | budget stop | head |", "|---|---|---|---|---|---|---|"]
    for seed, i in infos:
        budget = "—" if i["max_minutes"] is None else f"{i['max_minutes']:g}"
        lines.append(f"| {seed} | {i['steps_run']} ({i['planned_steps']}) | {i['samples_seen']} | "
                     f"{budget} | {i['total_seconds'] / 60:.1f} | {i['stopped_by_budget']} | "
                     f"`{i['head_ref']}` |")
    return "\n".join(lines)


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
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_path = write_table(rows, Path(runs_dir) / name / f"results-e4srec-{stamp}.parquet")
    create_markdown_artifact(_report(rows, infos, name), key="e4srec-results",
                             description=f"E4SRec on {name}")
    return str(out_path)
