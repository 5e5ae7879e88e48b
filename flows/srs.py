"""Stage 2 flow: prepare → split → train each (backbone, seed) → evaluate → report.

Tasks pass paths, hashes and small result rows; training runs are cached on content
(dataset fingerprint + resolved config hash + seed), so an unchanged re-run does no work.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from embeddings_store import EmbeddingStore
from flows.common import prepare
from pipeline.config import load_train_config
from pipeline.data.dataset import Dataset, read_fingerprint
from pipeline.errors import InputError
from pipeline.methods.llm_init.table import load_item_embedding, resolve_embedding
from pipeline.methods.llmesr.distill import resolve_user_embedding
from pipeline.methods.llmesr.train import train_llmesr
from pipeline.plots import head_tail_plot
from pipeline.results import markdown, write_table
from pipeline.split import leave_one_out
from pipeline.train import train_srs

METHODS = ("srs", "llmesr")


def _train_key(context, params) -> str:
    fp = read_fingerprint(Path(params["dataset_path"]))
    method = params.get("method") or "srs"
    cfg = load_train_config(params["backbone"], params["overrides"], method=method)
    cfg = cfg.model_copy(update={"seed": params["seed"]})
    source = params.get("embedding") or "id"
    key = (f"srs-{fp}-{cfg.backbone}-{cfg.config_hash()}-s{cfg.seed}-{source}"
           f"-{params.get('embedding_mode')}")
    if method != "srs":  # plain SRS keys stay as they were
        key += f"-{method}-{params.get('user_embedding')}"
    # The run folder (checkpoints) belongs to the result: another runs_dir trains again.
    return f"{key}-{Path(params['runs_dir']).resolve()}"


def _tag(ref: str) -> str:
    """`dataset/items/name@version` -> `name` (for run folder names)."""
    return ref.split("/", 1)[1].split("@")[0].split("/", 1)[-1].replace("/", "-")


@task(cache_key_fn=_train_key, persist_result=True, task_run_name="train-{backbone}-{method}-s{seed}")
def train(dataset_path: str, backbone: str, seed: int, overrides: dict, runs_dir: str,
          resume: bool = False, embedding: str | None = None, embedding_mode: str = "init",
          store_root: str = "store", method: str = "srs",
          user_embedding: str | None = None) -> list[dict]:
    """Train and evaluate one (backbone, seed); returns its test result rows.

    `embedding` is a resolved store reference (`dataset/kind@version`) whose vectors become
    the item representation: "init" (PCA to the model dim, then trained) or
    "frozen_adapter" (frozen table behind a trainable adapter). `method="llmesr"` trains
    LLM-ESR instead (its dual view replaces embedding_mode), with self-distillation over
    neighbours from `user_embedding` (a resolved users/… reference).
    """
    if method not in METHODS:
        raise InputError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    ds = Dataset.load(Path(dataset_path))
    cfg = load_train_config(backbone, overrides, method=method).model_copy(update={"seed": seed})
    split = leave_one_out(ds, neg_seed=cfg.neg_seed)
    used_users = None
    if method == "llmesr" and backbone != "pop":
        if embedding is None:
            raise InputError("method llmesr needs an item embedding (items/…)")
        used_users = user_embedding if cfg.llmesr.distill_weight > 0 else None
        run_dir = Path(runs_dir) / ds.name / (
            f"{backbone}-llmesr-{_tag(embedding)}-{_tag(used_users) if used_users else 'nosd'}"
            f"-{cfg.config_hash()}-s{seed}")
        result = train_llmesr(ds, split, cfg, EmbeddingStore(store_root), embedding, used_users,
                              run_dir, resume=resume)
        method_name, used_items = cfg.llmesr.variant(), embedding
    else:
        item_emb, tag = None, "id"
        if embedding is not None and backbone != "pop":
            item_emb = load_item_embedding(ds, EmbeddingStore(store_root), embedding,
                                           embedding_mode, cfg.model.dim)
            tag = f"{embedding.split('/', 1)[1].split('@')[0].replace('/', '-')}-{embedding_mode}"
        run_dir = Path(runs_dir) / ds.name / f"{backbone}-{tag}-{cfg.config_hash()}-s{seed}"
        result = train_srs(split, cfg, run_dir, resume=resume, item_emb=item_emb)
        method_name = "pop" if backbone == "pop" else ("id" if item_emb is None else f"llm-{embedding_mode}")
        used_items = embedding if item_emb is not None else None
    get_run_logger().info("%s %s seed %d: best epoch %d, %.1f s", backbone, method_name, seed,
                          result.best_epoch, result.train_seconds)
    common = {"dataset": ds.name, "fingerprint": ds.fingerprint,
              "method": method_name, "backbone": backbone,
              "embedding": used_items, "user_embedding": used_users, "seed": seed, "split": "test",
              "train_seconds": result.train_seconds, "best_epoch": result.best_epoch,
              "config_hash": cfg.config_hash()}
    return [{**common, **row} for row in result.test_rows]


@flow(name="srs")
def srs_flow(dataset: str = "movielens-100k", backbones: list[str] = ["sasrec"],  # noqa: B006
             seeds: list[int] = [0], overrides: dict | None = None,  # noqa: B006
             data_dir: str = "data", runs_dir: str = "runs", resume: bool = False,
             embedding: str | None = None, embedding_mode: str = "init",
             store_root: str = "store", method: str = "srs",
             user_embedding: str | None = None) -> str:
    """Train and evaluate backbones (ID-only, or on a store embedding, or LLM-ESR with
    `method="llmesr"`); returns the results Parquet path."""
    if method not in METHODS:
        raise InputError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    if method == "llmesr" and embedding is None:
        raise InputError("method llmesr needs an item embedding (items/…)")
    path = prepare(dataset, data_dir)
    ds = Dataset.load(Path(path))
    ref = resolve_embedding(ds, store_root, embedding) if embedding else None
    uref = resolve_user_embedding(ds, store_root, user_embedding) if user_embedding else None
    rows: list[dict] = []
    for backbone in backbones:
        for seed in seeds:
            rows += train(path, backbone, seed, overrides or {}, runs_dir, resume, ref,
                          embedding_mode, store_root, method=method, user_embedding=uref)
    name = ds.name
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = write_table(rows, Path(runs_dir) / name / f"results-{stamp}.parquet")
    plot = head_tail_plot(rows, out.with_suffix(".png"), title=f"{name}: full NDCG@10 by group")
    get_run_logger().info("results %s, head/tail plot %s", out, plot)
    create_markdown_artifact(markdown(rows, f"SRS on {name}") + f"\n\nPlot: `{plot}`",
                             key="srs-results", description=f"backbones on {name}")
    return str(out)
