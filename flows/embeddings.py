"""Stage 1 flows: item (and user) embeddings into the versioned store.

One flow per generator plus the umbrella `embeddings` flow. Tasks pass dataset folders and
store references; each generator task is cached on content (dataset fingerprint + resolved
config), so an unchanged re-run does no heavy work.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from embeddings_store import EmbeddingStore
from flows.common import prepare
from flows.sharding import semantic_sharded
from flows.tslrec import publish_tslrec, tslrec
from pipeline.config import load_train_config
from pipeline.data.dataset import Dataset, read_fingerprint
from pipeline.embed.rat import RatConfig, write_rat
from pipeline.embed.sasrec_id import write_sasrec_id
from pipeline.embed.scft import ScftConfig, write_scft
from pipeline.embed.semantic_writer import SemanticConfig, write_semantic
from pipeline.llm import LLMSpec
from pipeline.split import leave_one_out


def _sasrec_key(context, params) -> str:
    fp = read_fingerprint(Path(params["dataset_path"]))
    cfg = load_train_config("sasrec", params["overrides"])
    return f"sasrec-id-{fp}-{cfg.config_hash()}-s{cfg.seed}-{params['store_root']}"


@task(cache_key_fn=_sasrec_key, persist_result=True)
def sasrec_id(dataset_path: str, overrides: dict, store_root: str, runs_dir: str) -> str:
    """Train SASRec and store its item table as `items/sasrec-id`; returns the version ref."""
    ds = Dataset.load(Path(dataset_path))
    cfg = load_train_config("sasrec", overrides)
    run_dir = Path(runs_dir) / ds.name / f"generator-sasrec-id-{cfg.config_hash()}-s{cfg.seed}"
    ref = write_sasrec_id(ds, leave_one_out(ds, neg_seed=cfg.neg_seed), cfg, run_dir,
                          EmbeddingStore(store_root))
    get_run_logger().info("wrote %s", ref)
    return str(ref)


def _semantic_key(context, params) -> str:
    fp = read_fingerprint(Path(params["dataset_path"]))
    cfg = SemanticConfig(**params["config"])
    digest = hashlib.sha256(cfg.model_dump_json().encode()).hexdigest()[:12]
    return f"semantic-{fp}-{digest}-{params['store_root']}"


@task(cache_key_fn=_semantic_key, persist_result=True)
def semantic(dataset_path: str, config: dict, store_root: str) -> dict[str, str]:
    """Frozen-LLM item and user vectors → `items/semantic-*`, `users/semantic-*`."""
    ds = Dataset.load(Path(dataset_path))
    refs = write_semantic(ds, leave_one_out(ds), SemanticConfig(**config), EmbeddingStore(store_root))
    get_run_logger().info("wrote %s", ", ".join(map(str, refs.values())))
    return {ref.kind: str(ref) for ref in refs.values()}


def _digest(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:12]


def _scft_key(context, params) -> str:
    fp = read_fingerprint(Path(params["dataset_path"]))
    spec, cfg = LLMSpec(**params["llm"]), ScftConfig(**params["config"])
    return f"scft-{fp}-{_digest(spec.model_dump_json(), cfg.model_dump_json())}-{params['store_root']}"


@task(cache_key_fn=_scft_key, persist_result=True)
def scft(dataset_path: str, llm: dict, config: dict, store_root: str, runs_dir: str) -> str:
    """LLMEmb stage 1: contrastive LoRA fine-tuning → `items/llmemb-scft` (resumable)."""
    ds = Dataset.load(Path(dataset_path))
    spec, cfg = LLMSpec(**llm), ScftConfig(**config)
    run_dir = Path(runs_dir) / ds.name / f"scft-{_digest(spec.model_dump_json(), cfg.model_dump_json())}"
    ref = write_scft(ds, cfg, spec, EmbeddingStore(store_root), run_dir, resume=True)
    get_run_logger().info("wrote %s", ref)
    return str(ref)


def _rat_key(context, params) -> str:
    fp = read_fingerprint(Path(params["dataset_path"]))
    cfg = RatConfig(**params["config"])
    return (f"rat-{fp}-{_digest(cfg.model_dump_json(), params['upstream'])}"
            f"-{params['store_root']}")


@task(cache_key_fn=_rat_key, persist_result=True)
def rat(dataset_path: str, config: dict, upstream: list[str], store_root: str, runs_dir: str) -> str:
    """LLMEmb stage 2: frozen SCFT table + adapter aligned to sasrec-id → `items/llmemb-rat`.

    `upstream` (the SCFT and SASRec versions) is part of the cache key, so new upstream
    versions retrain RAT.
    """
    ds = Dataset.load(Path(dataset_path))
    cfg = RatConfig(**config)
    run_dir = Path(runs_dir) / ds.name / f"rat-{_digest(cfg.model_dump_json(), upstream)}"
    ref = write_rat(ds, leave_one_out(ds), cfg, EmbeddingStore(store_root), run_dir, resume=True)
    get_run_logger().info("wrote %s", ref)
    return str(ref)


@flow(name="embeddings")
def embeddings_flow(dataset: str = "movielens-100k", generators: list[str] = ["sasrec-id"],  # noqa: B006
                    sasrec_overrides: dict | None = None, semantic_config: dict | None = None,
                    llm: dict | None = None, scft_config: dict | None = None,
                    rat_config: dict | None = None, tslrec_config: dict | None = None,
                    data_dir: str = "data",
                    store_root: str = "store", runs_dir: str = "runs",
                    refresh: bool = False, shards: int = 1, task_runner: str = "threads",
                    runner_address: str | None = None,
                    workers: int | None = None) -> dict[str, str]:
    """Run the chosen generators; returns {kind: version ref}.

    `refresh` recomputes every generator instead of reusing the task cache (e.g. after
    deleting versions from the store by hand). `shards` > 1 splits the semantic generator
    into that many tasks on `task_runner` (threads | dask | ray; `runner_address` joins a
    running cluster, `workers` sizes a local one): same kinds and bytes (flows/sharding.py).
    """
    path = prepare(dataset, data_dir)
    refs: dict[str, str] = {}
    opts = {"refresh_cache": refresh}
    if "semantic" in generators and shards > 1:
        refs.update(semantic_sharded.with_options(**opts)(
            path, semantic_config or {}, store_root, shards, task_runner, runner_address, workers))
    elif "semantic" in generators:
        refs.update(semantic.with_options(**opts)(path, semantic_config or {}, store_root))
    if {"sasrec-id", "llmemb", "tslrec"} & set(generators):
        refs["items/sasrec-id"] = sasrec_id.with_options(**opts)(
            path, sasrec_overrides or {}, store_root, runs_dir)
    if "llmemb" in generators:
        refs["items/llmemb-scft"] = scft.with_options(**opts)(
            path, llm or {}, scft_config or {}, store_root, runs_dir)
        upstream = [refs["items/llmemb-scft"], refs["items/sasrec-id"]]
        refs["items/llmemb-rat"] = rat.with_options(**opts)(
            path, rat_config or {}, upstream, store_root, runs_dir)
    if "tslrec" in generators:  # k-means on the SASRec table: its exact version keys the cache
        refs["items/tslrec"] = tslrec.with_options(**opts)(
            path, llm or {}, tslrec_config or {}, refs["items/sasrec-id"], store_root, runs_dir)
        publish_tslrec(store_root, refs["items/tslrec"])
    lines = [f"## Embeddings for {Dataset.load(Path(path)).name}", "",
             "| kind | version |", "|---|---|"]
    lines += [f"| `{kind}` | `{ref}` |" for kind, ref in refs.items()]
    create_markdown_artifact("\n".join(lines), key="embeddings", description="store versions")
    return refs
