"""Pick the cheapest search parameter (IVF nprobe, HNSW efSearch) that reaches a recall target.

A fixed nprobe is either wasteful on well-clustered data or too low on diffuse data, so
the build measures instead: a seeded sample of stored vectors serves as queries, their
exact neighbours are accumulated while the vectors stream past during ``add`` (no extra
pass over the data), and the candidates are tried from cheapest up.
"""

from __future__ import annotations

import faiss
import numpy as np

from embeddings_store.index_choice import IndexChoice


def tune_candidates(choice: IndexChoice) -> tuple[str, list[int]]:
    """The knob to tune and its candidate values, cheapest first."""
    if choice.type == "hnsw":
        return "ef_search", [16, 32, 64, 128, 256, 512]
    nlist = int(choice.params["nlist"])
    values, v = [], 1
    while v < nlist:
        values.append(v)
        v *= 2
    return "nprobe", [*values, nlist]


class RecallProbe:
    """Exact top-k of a few stored vectors, accumulated chunk by chunk, to score an index."""

    def __init__(self, queries: np.ndarray, query_ids: np.ndarray, k: int, metric: str) -> None:
        self.queries = np.ascontiguousarray(queries, dtype=np.float32)  # [Q, D], prepared
        self.query_ids = np.asarray(query_ids, dtype=np.int64)  # [Q]
        self.k = k
        self.metric = faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT
        # k + 1: each query is itself stored; its own id is removed before scoring.
        self.heap = faiss.ResultHeap(len(queries), k + 1, keep_max=metric != "l2")
        self.truth: np.ndarray | None = None

    def observe(self, ids: np.ndarray, prepared: np.ndarray) -> None:
        """Fold one chunk (ids [n], prepared vectors [n, D]) into the exact results."""
        dist, rows = faiss.knn(
            self.queries, prepared, min(self.k + 1, len(prepared)), metric=self.metric
        )
        self.heap.add_result(dist, np.where(rows >= 0, ids[np.maximum(rows, 0)], -1))

    def _strip_self(self, ids: np.ndarray) -> np.ndarray:
        """Drop each query's own id from its row and keep the first k, [Q, k]."""
        out = np.full((len(ids), self.k), -1, dtype=np.int64)
        for i, row in enumerate(ids):
            kept = row[row != self.query_ids[i]][: self.k]
            out[i, : len(kept)] = kept
        return out

    def recall(self, index: faiss.Index) -> float:
        if self.truth is None:
            self.heap.finalize()
            self.truth = self._strip_self(self.heap.I)
        _, got = index.search(self.queries, self.k + 1)
        got = self._strip_self(got)
        hits = [
            len(np.intersect1d(g[g >= 0], t[t >= 0])) / max(1, (t >= 0).sum())
            for g, t in zip(got, self.truth, strict=True)
        ]
        return float(np.mean(hits))


def sample_rows(n: int, size: int, seed: int) -> np.ndarray:
    """Sorted distinct row positions, seeded, [min(size, n)]."""
    if size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))
