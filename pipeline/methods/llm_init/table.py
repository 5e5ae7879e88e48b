"""Stored item vectors → an SRS item embedding, in the two ways the papers consume them.

- "init": PCA to the backbone's dim, then an ordinary trainable ID table started there
  (LLM2X-style initialisation; the vectors are only a starting point).
- "frozen_adapter": the vectors (PCA'd to at most 256 dims) stay frozen and a two-layer
  linear adapter maps them to the backbone's dim (LLMEmb's RAT, METHODS.md §4.4).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from embeddings_store import EmbeddingStore
from models.item_emb import FrozenAdapterEmbedding, IdEmbedding, ItemEmbedding
from pipeline.data.dataset import Dataset
from pipeline.store_io import read_catalogue

Mode = Literal["init", "frozen_adapter"]
DEFAULT_PCA_DIM = 256


def pca(x: np.ndarray, k: int) -> tuple[np.ndarray, dict]:
    """[N, H] -> ([N, k] float32 projections onto the top-k principal axes, info).

    Eigendecomposition of the H×H covariance (cheap for N ≫ H); each axis's sign is fixed
    so its largest-magnitude loading is positive, making the result deterministic.
    info: k, explained variance ratio, and the mean removed.
    """
    n, h = x.shape
    if not 1 <= k <= min(n, h):
        raise ValueError(f"PCA dim must be in 1..{min(n, h)} for a [{n}, {h}] table, got {k}")
    mean = x.mean(axis=0, dtype=np.float64)  # [H]
    c = x.astype(np.float64) - mean  # [N, H]
    cov = c.T @ c / max(n - 1, 1)  # [H, H]
    vals, vecs = np.linalg.eigh(cov)  # ascending
    vals, vecs = vals[::-1][:k], vecs[:, ::-1][:, :k]  # [k], [H, k]
    signs = np.sign(vecs[np.abs(vecs).argmax(axis=0), np.arange(k)])
    vecs = vecs * np.where(signs == 0, 1.0, signs)
    total = float(np.trace(cov)) or 1.0
    info = {"k": k, "explained_variance": float(vals.sum() / total), "mean": mean.astype(np.float32)}
    return (c @ vecs).astype(np.float32), info


def item_embedding_from_store(vectors: np.ndarray, mode: Mode, dim: int,
                              pca_dim: int | None = None, sparse: bool = False) -> ItemEmbedding:
    """vectors [N, H] for items 1..N in id order (as `EmbeddingStore.read` returns them for
    a catalogue-covering version) -> an ItemEmbedding of size `dim`.

    "init": PCA to `dim`, rescaled so entries have the std (dim^-½) of a fresh ID table,
    with a zero pad row; every row trains. "frozen_adapter": PCA to `pca_dim` (default
    min(H, N, 256)), frozen, behind a trainable P → P/2 → dim linear adapter. `sparse`:
    row-sparse gradients for the "init" table (the sampled losses, pipeline/optim.py).
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    n, h = vectors.shape
    if mode == "init":
        if dim > min(n, h):
            raise ValueError(f"cannot PCA a [{n}, {h}] table to the backbone dim {dim}")
        proj, _ = pca(vectors, dim)  # [N, dim]
        proj *= dim**-0.5 / max(float(proj.std()), 1e-12)
        init = torch.from_numpy(np.concatenate([np.zeros((1, dim), np.float32), proj]))
        return IdEmbedding(n, dim, init=init, sparse=sparse)
    if mode == "frozen_adapter":
        k = pca_dim or min(h, n, DEFAULT_PCA_DIM)
        table = pca(vectors, k)[0] if k < h else vectors - vectors.mean(axis=0)
        return FrozenAdapterEmbedding(torch.from_numpy(np.ascontiguousarray(table)), dim)
    raise ValueError(f"mode must be 'init' or 'frozen_adapter', not {mode!r}")


def load_item_embedding(dataset: Dataset, store: EmbeddingStore, ref: str, mode: Mode,
                        dim: int, sparse: bool = False) -> ItemEmbedding:
    """Read a store version that covers the catalogue and turn it into an ItemEmbedding."""
    return item_embedding_from_store(read_item_vectors(dataset, store, ref), mode, dim,
                                     sparse=sparse)


def read_item_vectors(dataset: Dataset, store: EmbeddingStore, ref: str) -> np.ndarray:
    """[N, H] vectors of items 1..N in id order from a version made for this dataset."""
    return read_catalogue(dataset, store, ref)[1]
