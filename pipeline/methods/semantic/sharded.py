"""The semantic generator split into shards that separate workers run, with the same bytes.

Three phases per entity (items, then users), the middle one on the coordinator:

1. `encode_part` (one task per shard): encode the shard's texts with the frozen model and
   write the raw vectors as a *scratch* part of a staged store version;
2. `catalogue_mean`: the mean row of all raw vectors, summed in id order exactly as the
   one-process path does (`x.mean(axis=0, dtype=float64)`), so the centre is identical;
3. `centre_part` (one task per id range): centre and normalise the range's raw rows with
   that mean and write the final part; the store publishes the version only when all are
   in. Final parts are id ranges, so the rows are in id order as in a one-process write.

Bit-for-bit equality with `write_semantic` also needs every text encoded in the very batch
it gets there: the encoder sorts texts by token length and cuts batches of `batch_size`,
and padding length changes the float results. So each shard is a run of whole batches of
the *global* length order (`shard_rows`), which every worker recomputes from the token
lengths (cheap next to encoding) instead of shipping texts around.

`mapper` decides where the per-shard calls run: `run_serial` here; the Prefect flow maps
them onto its task runner (threads, Dask, Ray). Functions take plain, picklable arguments.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np

from embeddings_store import EmbeddingStore, IndexConfig, Parent, StagedVersion, VersionRef
from pipeline.data.dataset import Dataset
from pipeline.errors import InputError
from pipeline.methods.semantic.encode import centre_rows, mean_pairwise_cosine, semantic_info
from pipeline.methods.semantic.write import SemanticConfig, semantic_manifest
from pipeline.prompts import item_texts, user_texts
from pipeline.split import leave_one_out

Entity = Literal["items", "users"]
Mapper = Callable[[Callable[..., Any], list[dict[str, Any]]], list[Any]]
RAW = "raw"  # scratch name of the raw (uncentred) parts


def run_serial(fn: Callable[..., Any], calls: list[dict[str, Any]]) -> list[Any]:
    """The default mapper: every call in this process, in order."""
    return [fn(**kwargs) for kwargs in calls]


def part_count(n: int, shards: int, batch_size: int) -> int:
    """Parts actually used: never more than there are encoder batches (no empty shard)."""
    if shards < 1:
        raise InputError(f"shards must be >= 1, got {shards}")
    return max(1, min(shards, -(-n // batch_size)))


def shard_rows(lengths: np.ndarray, n_parts: int, batch_size: int) -> list[np.ndarray]:
    """Row indices per shard: whole batches of the encoder's global order (longest first,
    stable), batches dealt out as evenly as possible in contiguous runs."""
    order = np.argsort(-np.asarray(lengths), kind="stable")  # as TextEncoder sorts
    n_batches = -(-len(order) // batch_size)
    bounds = np.linspace(0, n_batches, n_parts + 1).round().astype(int)
    return [order[a * batch_size : b * batch_size] for a, b in itertools.pairwise(bounds)]


def entity_texts(dataset: Dataset, entity: Entity, cfg: SemanticConfig) -> tuple[np.ndarray, list[str]]:
    """(ids [n] = 1..n, texts) exactly as the one-process generator builds them."""
    if entity == "items":
        ids, texts = item_texts(dataset.items, cfg.prompt, dataset.name)
        if not np.array_equal(ids, np.arange(1, dataset.n_items + 1)):
            raise InputError(f"dataset {dataset.name}: items.parquet ids are not exactly "
                             f"1..{dataset.n_items}")
        return ids, texts
    texts = user_texts(dataset.items, leave_one_out(dataset).train, cfg.prompt, dataset.name)
    return np.arange(1, len(texts) + 1, dtype=np.int64), texts


_encoders: dict[str, Any] = {}
_encoders_lock = threading.Lock()


def _encoder(cfg: SemanticConfig, cache_dir: Path | None):
    """One loaded model per worker process (threads of one worker share it)."""
    from pipeline.llm import TextEncoder, load_model

    key = f"{cfg.model.model_dump_json()}|{cache_dir}"
    with _encoders_lock:
        if key not in _encoders:
            _encoders.clear()  # one model at a time: they are large
            _encoders[key] = TextEncoder(load_model(cfg.model, cache_dir=cache_dir), progress=False)
        return _encoders[key]


def encode_part(dataset_path: str, entity: Entity, config: SemanticConfig, staged: StagedVersion,
                part: int, cache_dir: str | None = None) -> dict[str, Any]:
    """Phase 1 for one shard: raw vectors → scratch part `part`; returns its counts."""
    ds = Dataset.load(Path(dataset_path))
    ids, texts = entity_texts(ds, entity, config)
    encoder = _encoder(config, Path(cache_dir) if cache_dir else None)
    lengths = np.array([len(t) for t in encoder.tokenize(texts)])
    rows = shard_rows(lengths, staged.n_parts, encoder.batch_size)[part]
    raw, stats = encoder.encode_with_stats([texts[i] for i in rows])  # [n, H]
    if not np.isfinite(raw).all():
        raise InputError(f"the model produced NaN/Inf vectors for {entity}; try dtype fp32")
    staged.write_part(part, ids[rows], raw, scratch=RAW)
    return {"rows": len(rows), "tokens": stats.n_tokens, "seconds": stats.seconds,
            "model": encoder.describe()}


def catalogue_mean(staged: StagedVersion, n: int) -> tuple[np.ndarray, float]:
    """Phase 2: ([H] float64 mean of the raw rows in id order, their mean pairwise cosine).

    Gathers the raw rows into one [n, H] matrix: the same memory the one-process path
    holds, and the only way to sum in id order (float sums depend on their order).
    """
    x: np.ndarray | None = None
    seen = np.zeros(n + 1, dtype=bool)
    for part in range(staged.n_parts):
        ids, raw = staged.read_part(part, scratch=RAW)
        if x is None:
            x = np.empty((n, raw.shape[1]), dtype=np.float32)  # [n, H]
        x[ids - 1] = raw
        seen[ids] = True
    if x is None or not seen[1:].all():
        raise InputError(f"{staged.where}: raw parts do not cover ids 1..{n}")
    return x.mean(axis=0, dtype=np.float64), mean_pairwise_cosine(x)


def id_ranges(n: int, n_parts: int) -> list[tuple[int, int]]:
    """Contiguous id ranges [a, b) over 1..n, one per final part, so that the published
    rows are in id order like a one-process write (and an index over them is the same)."""
    bounds = np.linspace(1, n + 1, n_parts + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(bounds)]


def centre_part(staged: StagedVersion, part: int, mean: list[float], n: int) -> list[float]:
    """Phase 3 for one id range: its raw rows (gathered from every raw part; reading them
    is cheap next to encoding) centred and normalised → final part `part`. Returns the [H]
    sum of the unit rows, from which the centred mean cosine is computed."""
    a, b = id_ranges(n, staged.n_parts)[part]
    raw: np.ndarray | None = None
    for src in range(staged.n_parts):
        ids, vecs = staged.read_part(src, scratch=RAW)
        keep = (ids >= a) & (ids < b)
        if raw is None:
            raw = np.full((b - a, vecs.shape[1]), np.nan, dtype=np.float32)  # [b-a, H]
        raw[ids[keep] - a] = vecs[keep]
    assert raw is not None
    vectors = centre_rows(raw, np.asarray(mean, dtype=np.float64))  # [b-a, H]
    staged.write_part(part, np.arange(a, b, dtype=np.int64), vectors)  # NaN: a missing id
    u = vectors.astype(np.float64)
    u /= np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-12)
    return u.sum(axis=0).tolist()


def write_entity_sharded(dataset: Dataset, entity: Entity, cfg: SemanticConfig,
                         store: EmbeddingStore, shards: int, mapper: Mapper = run_serial,
                         cache_dir: Path | None = None, parents: list[Parent] | None = None,
                         index: IndexConfig | None = None) -> VersionRef:
    """One entity's version, written in `shards` parts through `mapper`."""
    ids, texts = entity_texts(dataset, entity, cfg)
    n_parts = part_count(len(ids), shards, cfg.model.batch_size)
    kind = f"{entity}/semantic-{cfg.model.short_name}"
    with store.stage(dataset.name, kind, n_parts, normalized=True) as staged:
        start = time.perf_counter()
        common = {"dataset_path": str(dataset.path), "entity": entity, "config": cfg,
                  "staged": staged, "cache_dir": str(cache_dir) if cache_dir else None}
        done = mapper(encode_part, [{**common, "part": p} for p in range(n_parts)])
        seconds = time.perf_counter() - start
        mean, cos_raw = catalogue_mean(staged, len(ids))
        sums = mapper(centre_part, [{"staged": staged, "part": p, "mean": mean.tolist(),
                                     "n": len(ids)} for p in range(n_parts)])
        s = np.sum(np.asarray(sums, dtype=np.float64), axis=0)  # [H]
        n = len(ids)
        cos_centred = float((s @ s - n) / (n * (n - 1))) if n > 1 else 0.0
        info = semantic_info(texts, done[0]["model"], cfg.prompt, entity,
                             mean.astype(np.float32), cos_raw, cos_centred,
                             sum(d["tokens"] for d in done), seconds)
        info["shards"] = n_parts
        return store.commit(staged, semantic_manifest(dataset, done[0]["model"], info,
                                                      parents or []),
                            expected_ids=ids, index=index)


def write_semantic_sharded(dataset: Dataset, cfg: SemanticConfig, store: EmbeddingStore,
                           shards: int, mapper: Mapper = run_serial,
                           cache_dir: Path | None = None) -> dict[str, VersionRef]:
    """`write_semantic` in shards: the same kinds, ids and vector bytes (tested)."""
    refs = {"items": write_entity_sharded(dataset, "items", cfg, store, shards, mapper, cache_dir)}
    if cfg.users:
        parent = Parent(kind=refs["items"].kind, version=refs["items"].version)
        refs["users"] = write_entity_sharded(dataset, "users", cfg, store, shards, mapper,
                                             cache_dir, [parent], IndexConfig())
    return refs


def clear_encoders() -> None:
    """Drop the per-process model cache (tests; long-lived workers between runs)."""
    with _encoders_lock:
        _encoders.clear()
