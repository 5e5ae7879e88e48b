"""Building, saving, loading and searching a version's FAISS index.

Search always returns *ids* (the index stores them: IDMap for Flat/HNSW, native ids for
IVF), never row positions, so a caller cannot mix up rows and catalogue ids. Builds run
on a GPU when faiss has one and the index type supports it, and are always saved as a
CPU index so any machine can load them (memory-mapped, read-only).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from embeddings_store.errors import StoreError
from embeddings_store.index_choice import IndexChoice, IndexConfig, choose_index
from embeddings_store.manifest import IndexInfo
from embeddings_store.tuning import RecallProbe, sample_rows, tune_candidates

Chunks = Iterable[tuple[np.ndarray, np.ndarray]]  # (ids [n] int64, vectors [n, D] float32)


def faiss_metric(metric: str) -> int:
    return faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT


def _prepared(vectors: np.ndarray, metric: str) -> np.ndarray:
    """float32 C-contiguous [n, D]; L2-normalised copy for cosine (cosine = IP on unit vectors)."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if metric == "cosine":
        x = x.copy()
        faiss.normalize_L2(x)
    return x


@contextlib.contextmanager
def omp_threads(n: int | None) -> Iterator[None]:
    """Use ``n`` OpenMP threads (default: every core) for the block, then restore."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n or os.cpu_count() or 1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def gpu_available() -> bool:
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def set_search_params(index: faiss.Index, params: dict[str, Any]) -> None:
    """Apply nprobe / efSearch through any IDMap wrapper; other keys are ignored."""
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap) else index
    if params.get("nprobe") is not None:
        try:
            ivf = faiss.extract_index_ivf(index)
        except RuntimeError:
            raise StoreError("nprobe applies to IVF indexes only") from None
        ivf.nprobe = int(params["nprobe"])
    if params.get("ef_search") is not None:
        if not hasattr(inner, "hnsw"):
            raise StoreError("ef_search applies to HNSW indexes only")
        inner.hnsw.efSearch = int(params["ef_search"])


def _gather(chunks: Chunks, rows: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """The given sorted row positions out of a stream: (ids [m], vectors [m, D])."""
    out_ids = np.empty(len(rows), dtype=np.int64)
    out = np.empty((len(rows), dim), dtype=np.float32)
    start = filled = 0
    for ids, vec in chunks:
        lo, hi = np.searchsorted(rows, [start, start + len(vec)])
        out_ids[filled : filled + hi - lo] = ids[rows[lo:hi] - start]
        out[filled : filled + hi - lo] = vec[rows[lo:hi] - start]
        filled += hi - lo
        start += len(vec)
    if filled != len(rows):
        raise StoreError(f"sampling: the stream ended after {start} rows")
    return out_ids, out


def _tune(
    index: faiss.Index, choice: IndexChoice, probe: RecallProbe, target: float
) -> dict[str, Any]:
    """Cheapest candidate reaching ``target`` recall.

    IVF-PQ recall saturates below 1 (quantisation error), so there the search also stops
    when one more doubling gains < 0.002; IVF-Flat and HNSW always reach the target.
    """
    name, candidates = tune_candidates(choice)
    chosen, chosen_recall = candidates[-1], 0.0
    for value in candidates:
        set_search_params(index, {name: value})
        r = probe.recall(index)
        if r >= target:
            chosen, chosen_recall = value, r
            break
        if choice.type == "ivf_pq" and chosen_recall and r - chosen_recall < 0.002:
            break
        chosen, chosen_recall = value, r
    return {
        name: chosen,
        f"tuned_recall_at_{probe.k}": round(chosen_recall, 4),
        "tune_queries": len(probe.queries),
    }


def build_index(
    make_chunks: Callable[[], Chunks],
    count: int,
    dim: int,
    metric: str,
    config: IndexConfig | None = None,
) -> tuple[faiss.Index, IndexInfo]:
    """Build the chosen index from a re-iterable stream of (ids, vectors) chunks.

    Pass 1 (only when training or tuning) gathers a seeded sample; pass 2 adds every
    chunk and folds it into the exact neighbours of the tuning queries. Memory is the
    index plus one chunk and the sample, whatever the number of vectors.
    """
    cfg = config or IndexConfig()
    choice = choose_index(count, dim, metric, cfg)
    t0 = time.perf_counter()
    if cfg.use_gpu and not gpu_available():
        raise StoreError("index use_gpu=true but faiss sees no GPU")
    use_gpu = cfg.use_gpu is not False and gpu_available() and choice.type in ("ivf_flat", "ivf_pq")
    explicit = cfg.nprobe if choice.type.startswith("ivf") else cfg.ef_search
    tune_q = (
        min(cfg.tune_queries, count)
        if cfg.target_recall and choice.type != "flat" and explicit is None
        else 0
    )
    params = dict(choice.params)
    with omp_threads(cfg.threads):
        index = faiss.index_factory(dim, choice.factory, faiss_metric(metric))
        if choice.train_size:
            faiss.extract_index_ivf(index).cp.seed = cfg.seed
        if choice.type == "hnsw":
            faiss.downcast_index(index.index).hnsw.efConstruction = int(params["ef_construction"])
        res, work = None, index
        if use_gpu:
            res = faiss.StandardGpuResources()
            work = faiss.index_cpu_to_gpu(res, 0, index)
        probe = None
        if choice.train_size or tune_q:
            rows = sample_rows(count, max(choice.train_size, tune_q), cfg.seed)
            s_ids, s_vec = _gather(make_chunks(), rows, dim)  # our own buffers: prepare in place
            if metric == "cosine":
                faiss.normalize_L2(s_vec)
            perm = np.random.default_rng(cfg.seed + 1).permutation(len(rows))
            if tune_q:
                probe = RecallProbe(s_vec[perm[:tune_q]], s_ids[perm[:tune_q]], 10, metric)
            if choice.train_size:
                # k-means ignores order: train on the whole sample without another copy.
                train = (
                    s_vec if choice.train_size == len(rows) else s_vec[perm[: choice.train_size]]
                )
                work.train(np.ascontiguousarray(train))
                del train
            del s_ids, s_vec
        added = 0
        for ids, vec in make_chunks():
            prepared = _prepared(vec, metric)
            ids64 = np.ascontiguousarray(ids, dtype=np.int64)
            work.add_with_ids(prepared, ids64)
            if probe is not None:
                probe.observe(ids64, prepared)
            added += len(ids)
        if use_gpu:
            index = faiss.index_gpu_to_cpu(work)
        del work, res
        if added != count or index.ntotal != count:
            raise StoreError(f"index holds {index.ntotal} vectors, expected {count}")
        if probe is not None:
            params.update(_tune(index, choice, probe, float(cfg.target_recall or 0.0)))
        set_search_params(index, params)
    info = IndexInfo(
        type=choice.type,
        factory=choice.factory,
        metric=metric,  # type: ignore[arg-type]
        ntotal=int(index.ntotal),
        params=params,
        build_s=round(time.perf_counter() - t0, 3),
        gpu=use_gpu,
    )
    return index, info


def save_index(index: faiss.Index, path: Path) -> None:
    """Always a CPU index on disk (a GPU index cannot be serialised or loaded elsewhere)."""
    if hasattr(faiss, "GpuIndex") and isinstance(index, faiss.GpuIndex):
        index = faiss.index_gpu_to_cpu(index)
    faiss.write_index(index, str(path))


def load_index(path: Path, mmap: bool = True) -> faiss.Index:
    """Read an index; with ``mmap`` its codes stay on disk, mapped read-only.

    ``IO_FLAG_MMAP_IFC`` maps flat codes and HNSW storage, ``IO_FLAG_MMAP`` maps IVF
    lists; builds differ in which they support, so try them in turn.
    """
    if not path.is_file():
        raise StoreError(f"{path}: index file missing")
    flag_sets = []
    if mmap:
        if hasattr(faiss, "IO_FLAG_MMAP_IFC"):
            flag_sets.append(faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
        flag_sets.append(faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
    flag_sets.append(0)
    last: Exception | None = None
    for flags in flag_sets:
        try:
            return faiss.read_index(str(path), flags)
        except RuntimeError as e:
            last = e
    raise StoreError(f"{path}: unreadable FAISS index ({str(last).splitlines()[0][:200]})")


class VectorIndex:
    """A loaded index plus what searching it correctly needs (metric, dim, params)."""

    def __init__(
        self, index: faiss.Index, metric: str, params: dict[str, Any] | None = None
    ) -> None:
        self.index = index
        self.metric = metric
        self.dim = int(index.d)
        self.params = dict(params or {})
        set_search_params(index, self.params)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def search(
        self, queries: np.ndarray, k: int, batch_size: int = 4096, **params: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` per query: (ids [Q, k] int64, scores [Q, k] float32).

        Scores are inner products (``ip``/``cosine``, higher is closer) or squared L2
        distances (``l2``, lower is closer); slots beyond the index size hold id -1.
        ``params`` (nprobe=, ef_search=) override the stored search parameters.
        """
        q = np.asarray(queries)
        if q.ndim == 1:
            q = q[None, :]
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise StoreError(f"queries have shape {q.shape}, expected [Q, {self.dim}]")
        if k < 1:
            raise StoreError(f"k must be >= 1, got {k}")
        if not np.isfinite(q).all():
            raise StoreError("queries contain NaN/Inf")
        if params:
            set_search_params(self.index, params)
        out_ids = np.empty((len(q), k), dtype=np.int64)  # [Q, k]
        out_scores = np.empty((len(q), k), dtype=np.float32)  # [Q, k]
        for start in range(0, len(q), batch_size):
            batch = _prepared(q[start : start + batch_size], self.metric)
            scores, ids = self.index.search(batch, k)
            out_ids[start : start + len(batch)] = ids
            out_scores[start : start + len(batch)] = scores
        if params:
            set_search_params(self.index, self.params)
        return out_ids, out_scores


def exact_index(ids: np.ndarray, vectors: np.ndarray, metric: str) -> VectorIndex:
    """An in-memory exact index, for versions stored without one."""
    index = faiss.index_factory(vectors.shape[1], "IDMap,Flat", faiss_metric(metric))
    if len(ids):
        index.add_with_ids(_prepared(vectors, metric), np.ascontiguousarray(ids, dtype=np.int64))
    return VectorIndex(index, metric)
