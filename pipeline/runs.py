"""Runs: what a request resolves to, where its files go, what its results look like.

The one home of run-folder naming, cache keys, result-row schema and method dispatch, so
the flows only wire tasks (DESIGN.md, "Orchestration").

- `cache_key(*parts)`: the one content digest behind every task cache key and run folder.
- Stage 1: `run_generator` runs one registered generator (pipeline/methods/registry.py).
- Stage 2: `train_one` trains one (backbone, seed) with the requested method and returns
  its result rows (`RESULT_COLUMNS`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.data.dataset import Dataset, read_fingerprint, read_meta

if TYPE_CHECKING:
    from pipeline.config import TrainConfig
    from pipeline.requests import TrainRequest


def cache_key(*parts: Any) -> str:
    """A short, stable digest of JSON-able parts (pydantic models by their JSON dump; a
    TrainConfig by its config hash and seed, so a field added later at its default, or a
    thread count, does not retrain the generators that train an SRS, e.g. sasrec-id)."""
    from pipeline.config import TrainConfig

    def plain(x: Any) -> Any:
        if isinstance(x, TrainConfig):
            return {"train_config": x.config_hash(), "seed": x.seed}
        return x.model_dump(mode="json") if hasattr(x, "model_dump") else x

    payload = json.dumps([plain(p) for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def run_folder(runs_dir: str | Path, dataset: str, *name: str) -> Path:
    """`runs/<dataset>/<name parts joined by '-'>`: every run's checkpoints live here."""
    return Path(runs_dir) / dataset / "-".join(name)


# ---- stage 1 -------------------------------------------------------------------------------


def _generator_inputs(name: str, overrides: dict, llm: dict | None):
    from pipeline.llm.spec import LLMSpec
    from pipeline.methods.registry import get_generator

    gen = get_generator(name)
    spec = LLMSpec(**(llm or {})) if gen.uses_llm else None
    return gen, gen.load_config(overrides, spec), spec


def generator_config(name: str, overrides: dict, llm: dict | None) -> dict:
    """A generator's resolved config as JSON (what its writer and its manifest see)."""
    return _generator_inputs(name, overrides, llm)[1].model_dump(mode="json")


def generator_key(name: str, dataset_path: str, overrides: dict, llm: dict | None,
                  upstream: dict[str, str], store_root: str) -> str:
    """Content key of one generator run: dataset fingerprint + resolved config + LLM +
    exact upstream versions, and the current versions of what it reads from the store
    beyond them (`stored_inputs`) (+ the store it writes to)."""
    gen, cfg, spec = _generator_inputs(name, overrides, llm)
    meta = read_meta(Path(dataset_path))
    # optional, as `negatives` is: a duck-typed generator without it reads nothing more
    stored = getattr(gen, "stored_inputs", lambda c, u: [])(cfg, upstream)
    if stored:  # their current versions count like upstream ones
        from embeddings_store import EmbeddingStore

        store = EmbeddingStore(store_root)
        upstream = {**upstream, **{k: str(store.resolve(k, dataset=meta["name"])) for k in stored}}
    return f"gen-{name}-{meta['fingerprint']}-{cache_key(cfg, spec, upstream)}-{Path(store_root).resolve()}"


def run_generator(name: str, dataset_path: str, overrides: dict, llm: dict | None,
                  upstream: dict[str, str], store_root: str, runs_dir: str,
                  resume: bool = True) -> dict[str, str]:
    """Run one generator; {kind: exact version ref} of what it wrote."""
    from embeddings_store import EmbeddingStore
    from pipeline.methods.registry import GenContext

    gen, cfg, spec = _generator_inputs(name, overrides, llm)
    ds = Dataset.load(Path(dataset_path))
    ctx = GenContext(dataset=ds, store=EmbeddingStore(store_root),
                     run_dir=run_folder(runs_dir, ds.name, name, cache_key(cfg, spec, upstream)),
                     config=cfg, llm=spec, upstream=dict(upstream), resume=resume)
    return gen.write(ctx)


def generator_report(name: str, store_root: str, refs: dict[str, str]) -> str | None:
    """A generator's own markdown about what it wrote (e.g. TSLRec's held-out table)."""
    from embeddings_store import EmbeddingStore
    from pipeline.methods.registry import get_generator

    report = getattr(get_generator(name), "report", None)
    if report is None:
        return None
    return "\n\n".join(report(EmbeddingStore(store_root), ref) for ref in refs.values())


def store_versions_markdown(dataset_name: str, refs: dict[str, str]) -> str:
    lines = [f"## Embeddings for {dataset_name}", "", "| kind | version |", "|---|---|"]
    return "\n".join(lines + [f"| `{kind}` | `{ref}` |" for kind, ref in refs.items()])


# ---- stage 2 -------------------------------------------------------------------------------


def _tag(ref: str) -> str:
    """`dataset/items/name@version` -> `name` (for run folder names)."""
    return ref.split("/", 1)[1].split("@")[0].split("/", 1)[-1].replace("/", "-")


def srs_key(dataset_path: str, cfg: TrainConfig, seed: int, request: TrainRequest,
            embedding: str | None, user_embedding: str | None) -> str:
    """Content key of one stage-2 run: fingerprint + resolved config + seed + stored inputs
    (+ the run folder, which belongs to the result: another runs_dir trains again)."""
    fp = read_fingerprint(Path(dataset_path))
    cfg = cfg.model_copy(update={"seed": seed})
    key = (f"srs-{fp}-{cfg.backbone}-{cfg.config_hash()}-s{cfg.seed}-{embedding or 'id'}"
           f"-{request.embedding_mode}")
    if request.method != "srs":  # plain SRS keys stay as they were
        key += f"-{request.method}-{user_embedding}"
    return f"{key}-{Path(request.runs_dir).resolve()}"


def run_dir_of(dataset_name: str, cfg: TrainConfig, seed: int, request: TrainRequest,
               embedding: str | None, user_embedding: str | None) -> Path:
    """The run folder of one stage-2 run (its checkpoints): named by backbone, method, stored
    inputs, config hash and seed."""
    backbone, runs_dir = cfg.backbone, request.runs_dir
    if request.method == "llmesr" and backbone != "pop":
        users = user_embedding if cfg.llmesr.distill_weight > 0 else None
        return run_folder(runs_dir, dataset_name, backbone, "llmesr", _tag(embedding or "-/-"),
                          _tag(users) if users else "nosd", cfg.config_hash(), f"s{seed}")
    tag = "id"
    if embedding is not None and backbone != "pop":
        kind = embedding.split("/", 1)[1].split("@")[0].replace("/", "-")
        tag = f"{kind}-{request.embedding_mode}"
    return run_folder(runs_dir, dataset_name, backbone, tag, cfg.config_hash(), f"s{seed}")


def run_folder_gone(dataset_name: str, cfg: TrainConfig, seed: int, request: TrainRequest,
                    embedding: str | None, user_embedding: str | None) -> bool:
    """Whether a run's folder is missing: a cached result for it would cite checkpoints that
    are gone, so the flows train it again instead of answering from the cache."""
    return not run_dir_of(dataset_name, cfg, seed, request, embedding, user_embedding).is_dir()


def train_one(dataset_path: str, cfg: TrainConfig, seed: int, request: TrainRequest,
              embedding: str | None = None, user_embedding: str | None = None
              ) -> tuple[list[dict], str]:
    """Train and evaluate one (backbone config, seed) as `request.method` asks; (test result
    rows, summary).

    `embedding` is a resolved store reference (`dataset/kind@version`) whose vectors become
    the item representation: "init" (PCA to the model dim, then trained) or
    "frozen_adapter" (frozen table behind a trainable adapter). `method="llmesr"` trains
    LLM-ESR instead (its dual view replaces embedding_mode), with self-distillation over
    neighbours from `user_embedding` (a resolved users/… reference).
    """
    from embeddings_store import EmbeddingStore
    from pipeline.errors import InputError
    from pipeline.split import leave_one_out
    from pipeline.train import train_srs

    cfg = cfg.model_copy(update={"seed": seed})
    if request.method == "llmesr" and cfg.backbone != "pop" and cfg.llmesr.rasd == "auto" \
            and cfg.llmesr.distill_weight > 0:
        return _rasd_selected(dataset_path, cfg, seed, request, embedding, user_embedding)
    ds = Dataset.load(Path(dataset_path))
    backbone, mode = cfg.backbone, request.embedding_mode
    split = leave_one_out(ds, n_neg=cfg.n_negatives, neg_seed=cfg.neg_seed)
    run_dir = run_dir_of(ds.name, cfg, seed, request, embedding, user_embedding)
    used_users = None
    if request.method == "llmesr" and backbone != "pop":
        from pipeline.methods.llmesr.train import train_llmesr

        if embedding is None:
            raise InputError("method llmesr needs an item embedding (items/…)")
        used_users = user_embedding if cfg.llmesr.distill_weight > 0 else None
        result = train_llmesr(ds, split, cfg, EmbeddingStore(request.store_root), embedding,
                              used_users, run_dir, resume=request.resume)
        method_name, used_items = cfg.llmesr.variant(), embedding
    else:
        from pipeline.methods.llm_init.table import load_item_embedding
        from pipeline.train import sparse_rows

        item_emb = None
        if embedding is not None and backbone != "pop":
            item_emb = load_item_embedding(ds, EmbeddingStore(request.store_root), embedding,
                                           mode, cfg.model.dim, sparse=sparse_rows(cfg))
        result = train_srs(split, cfg, run_dir, resume=request.resume, item_emb=item_emb)
        method_name = "pop" if backbone == "pop" else ("id" if item_emb is None else f"llm-{mode}")
        used_items = embedding if item_emb is not None else None
    run = f"{ds.name}/{run_dir.name}"  # what `llm4srs recommend` takes
    write_run_card(run_dir, ds, method=method_name, backbone=backbone, seed=seed,
                   embedding=used_items, embedding_mode=mode if used_items else None,
                   user_embedding=used_users, config_hash=cfg.config_hash(),
                   best_epoch=result.best_epoch, valid_rows=result.valid_rows,
                   **_distributed_card(cfg))
    rows = result_rows(ds, result.test_rows, method=method_name, backbone=backbone,
                       embedding=used_items, user_embedding=used_users, seed=seed,
                       train_seconds=result.train_seconds, best_epoch=result.best_epoch,
                       config_hash=cfg.config_hash(), run=run)
    summary = (f"{backbone} {method_name} seed {seed}: best epoch {result.best_epoch}, "
               f"{result.train_seconds:.1f} s")
    return rows, summary


def _rasd_selected(dataset_path: str, cfg: TrainConfig, seed: int, request: TrainRequest,
                   embedding: str | None, user_embedding: str | None) -> tuple[list[dict], str]:
    """`llmesr.rasd=auto`: LLM-ESR with and without self-distillation as two ordinary runs
    (each in its own folder, the same ones the plain `llmesr` and `llmesr-nodistill` runs of
    these settings use, so either may already be done), and the test rows of the one whose
    validation full NDCG@10 is higher (distillation kept on a tie). Test metrics never choose."""
    from pipeline.evaluate import pick

    on = cfg.model_copy(update={"llmesr": cfg.llmesr.model_copy(update={"rasd": "on"})})
    off = on.model_copy(update={"llmesr": on.llmesr.model_copy(update={"distill_weight": 0.0})})
    name = Dataset.load(Path(dataset_path)).name
    tried = []
    for variant, users in ((on, user_embedding), (off, None)):
        run_dir = run_dir_of(name, variant, seed, request, embedding, users)
        rows = _finished_rows(run_dir, request)
        if rows is None:
            rows, _ = train_one(dataset_path, variant, seed, request, embedding, users)
        card = json.loads((run_dir / "run.json").read_text())
        tried.append((pick(card["valid_rows"]), rows, variant.llmesr.distill_weight > 0))
    _, rows, distilled = max(tried, key=lambda t: t[0])  # the first (RASD on) on a tie
    label = cfg.llmesr.variant()
    summary = (f"{cfg.backbone} {label} seed {seed}: RASD {'on' if distilled else 'off'} "
               f"(validation NDCG@10 {tried[0][0]:.4f} with, {tried[1][0]:.4f} without)")
    return [{**r, "method": label} for r in rows], summary


def _finished_rows(run_dir: Path, request: TrainRequest) -> list[dict] | None:
    """The test rows of a run that already finished in run_dir (its run.json and
    result.json written), or None (not finished, or `request.refresh`)."""
    card, result = run_dir / "run.json", run_dir / "result.json"
    if request.refresh or not (card.is_file() and result.is_file()):
        return None
    meta = json.loads(card.read_text())
    done = json.loads(result.read_text())
    common = {k: meta.get(k) for k in ("method", "backbone", "embedding", "user_embedding",
                                        "seed", "config_hash")}
    return _rows(meta["dataset"], meta["fingerprint"], done["test_rows"],
                 train_seconds=done["train_seconds"], best_epoch=done["best_epoch"],
                 run=f"{meta['dataset']}/{run_dir.name}", **common)


def _distributed_card(cfg: TrainConfig) -> dict:
    """A multi-process run's card records its process count and per-rank dropout seeds;
    a one-process run's card is as it always was."""
    if cfg.nproc == 1 or cfg.backbone == "pop":
        return {}
    from pipeline.distributed import run_info

    return {"distributed": run_info(cfg.seed, cfg.nproc)}


def write_run_card(run_dir: Path, ds: Dataset, **fields: Any) -> None:
    """`run.json`: what a trained run was trained on, so it can be loaded on its own
    (pipeline/recommend.py)."""
    from embeddings_store.atomic import atomic_write_text

    card = {"dataset": ds.name, "dataset_path": str(ds.path.resolve()),
            "fingerprint": ds.fingerprint, **fields}
    atomic_write_text(run_dir / "run.json", json.dumps(card, indent=2))


def result_rows(ds: Dataset, metric_rows: list[dict], **common: Any) -> list[dict]:
    """The results-table rows (pipeline/results.COLUMNS) of one run's test metrics."""
    return _rows(ds.name, ds.fingerprint, metric_rows, **common)


def _rows(dataset: str, fingerprint: str, metric_rows: list[dict], **common: Any) -> list[dict]:
    base = {"dataset": dataset, "fingerprint": fingerprint, "split": "test", **common}
    return [{**base, **row} for row in metric_rows]


def utc_stamp() -> str:
    """The UTC time in result file names: `20260101T120000Z`."""
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def results_path(runs_dir: str, dataset_name: str, prefix: str = "results") -> Path:
    """`runs/<dataset>/<prefix>-<UTC time>.parquet` (the plot goes beside it as .png)."""
    return Path(runs_dir) / dataset_name / f"{prefix}-{utc_stamp()}.parquet"
