"""k-means over stored vectors (faiss.Kmeans), for methods that cluster items or users.

A thin, seeded wrapper: it returns centroids, every point's assignment and the inertia
over *all* points (faiss's own objective is over its training subsample), so results
are reproducible and comparable between runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np

from embeddings_store.errors import StoreError
from embeddings_store.index import gpu_available, omp_threads


@dataclass(frozen=True)
class KMeansResult:
    centroids: np.ndarray  # [k, D] float32
    assignment: np.ndarray  # [N] int64, index into centroids
    inertia: float  # sum of squared L2 distances of each point to its centroid


def kmeans(
    vectors: np.ndarray,
    k: int,
    seed: int = 0,
    niter: int = 25,
    spherical: bool = False,
    max_points_per_centroid: int = 256,
    use_gpu: bool | None = None,
    threads: int | None = None,
    batch_size: int = 65536,
) -> KMeansResult:
    """Cluster ``vectors`` [N, D] into ``k`` groups; deterministic for a given seed on CPU.

    ``spherical`` keeps centroids on the unit sphere (for normalised / cosine vectors).
    """
    x = np.ascontiguousarray(vectors, dtype=np.float32)  # [N, D]
    if x.ndim != 2:
        raise StoreError(f"kmeans: vectors must be [N, D], got shape {x.shape}")
    n, d = x.shape
    if not 1 <= k <= n:
        raise StoreError(f"kmeans: k={k} must be between 1 and the number of vectors {n}")
    if not np.isfinite(x).all():
        raise StoreError("kmeans: vectors contain NaN/Inf")
    gpu = gpu_available() if use_gpu is None else use_gpu
    if gpu and not gpu_available():
        raise StoreError("kmeans: use_gpu=true but faiss sees no GPU")
    with omp_threads(threads):
        km = faiss.Kmeans(
            d,
            k,
            niter=niter,
            seed=seed,
            spherical=spherical,
            gpu=bool(gpu),
            verbose=False,
            max_points_per_centroid=max_points_per_centroid,
        )
        km.train(x)
        centroids = np.ascontiguousarray(km.centroids, dtype=np.float32)  # [k, D]
        # Assign with an exact L2 index so inertia has one meaning for plain and spherical.
        assigner = faiss.IndexFlatL2(d)
        assigner.add(centroids)
        assignment = np.empty(n, dtype=np.int64)
        inertia = 0.0
        for start in range(0, n, batch_size):
            dist, idx = assigner.search(x[start : start + batch_size], 1)
            assignment[start : start + len(idx)] = idx[:, 0]
            inertia += float(dist[:, 0].astype(np.float64).sum())
    return KMeansResult(centroids, assignment, inertia)
