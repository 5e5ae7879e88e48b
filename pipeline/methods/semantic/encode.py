"""LLM-ESR's semantic view: a frozen LLM's vectors of item texts and of user histories.

Raw hidden states are strongly anisotropic (any two items have cosine ~0.96 with SmolLM2
mean pooling; ../shared/STACK.md), which makes cosine neighbours and FAISS useless, so the
vectors are centred on their own mean and L2-normalised; the mean goes into the manifest
so a later query text can be placed in the same space.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np

from pipeline.errors import InputError
from pipeline.prompts import PromptConfig, item_texts, user_texts

if TYPE_CHECKING:
    from pipeline.data.dataset import Dataset
    from pipeline.llm.encode import TextEncoder
    from pipeline.split import Split


def centre_normalise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[N, H] -> ([N, H] unit rows after subtracting the mean row, [H] that mean), float32."""
    mean = x.mean(axis=0, dtype=np.float64)  # [H]
    return centre_rows(x, mean), mean.astype(np.float32)


def centre_rows(x: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """[n, H] rows minus a float64 mean [H], L2-normalised, float32. Row by row, so a shard
    of rows gets bit-for-bit what it gets inside the whole matrix (sharded generation)."""
    c = x.astype(np.float64) - mean  # [n, H]
    norms = np.linalg.norm(c, axis=1, keepdims=True)  # [n, 1]
    return (c / np.maximum(norms, 1e-12)).astype(np.float32)


def mean_pairwise_cosine(x: np.ndarray) -> float:
    """Mean cosine over distinct pairs of rows, in O(N·H): (‖Σu‖² − N) / (N(N−1))."""
    n = len(x)
    if n < 2:
        return 0.0
    u = x.astype(np.float64)
    u /= np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-12)
    s = u.sum(axis=0)  # [H]
    return float((s @ s - n) / (n * (n - 1)))


def _texts_hash(texts: list[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode())
        h.update(b"\0")
    return h.hexdigest()


def _embed(texts: list[str], encoder: TextEncoder, cfg: PromptConfig, entity: str) -> tuple[np.ndarray, dict]:
    raw, stats = encoder.encode_with_stats(texts)  # [N, H]
    if not np.isfinite(raw).all():
        raise InputError(f"the model produced NaN/Inf vectors for {entity}; try dtype fp32")
    vectors, mean = centre_normalise(raw)
    info = semantic_info(texts, encoder.describe(), cfg, entity, mean,
                         mean_pairwise_cosine(raw), mean_pairwise_cosine(vectors),
                         stats.n_tokens, stats.seconds)
    return vectors, info


def semantic_info(texts: list[str], model: dict, cfg: PromptConfig, entity: str,
                  mean: np.ndarray, cos_raw: float, cos_centred: float, tokens: int,
                  seconds: float) -> dict:
    """The facts a semantic version's manifest records (one-process and sharded runs alike)."""
    return {
        "generator": "semantic", "entity": entity, "count": len(texts), "dim": len(mean),
        "model": model, "prompt_config": cfg.model_dump(mode="json"),
        "texts_sha256": _texts_hash(texts), "example_text": texts[0] if texts else "",
        "centred": True, "normalised": True, "metric": "cosine",
        "centre": [float(v) for v in mean],  # subtracted before normalising
        "mean_cosine_raw": round(cos_raw, 4),
        "mean_cosine_centred": round(cos_centred, 4),
        "tokens": tokens, "seconds": round(seconds, 2),
        "texts_per_s": round(len(texts) / max(seconds, 1e-9), 2),
    }


def semantic_item_embeddings(dataset: Dataset, encoder: TextEncoder, prompt_cfg: PromptConfig
                             ) -> tuple[np.ndarray, np.ndarray, dict]:
    """(item ids [N] int64 = 1..N, vectors [N, H] float32 centred + unit, info for the manifest)."""
    ids, texts = item_texts(dataset.items, prompt_cfg, dataset.name)
    if not np.array_equal(ids, np.arange(1, dataset.n_items + 1)):
        raise InputError(f"dataset {dataset.name}: items.parquet ids are not exactly 1..{dataset.n_items}")
    vectors, info = _embed(texts, encoder, prompt_cfg, "items")
    return ids, vectors, info


def semantic_user_embeddings(dataset: Dataset, split: Split, encoder: TextEncoder,
                             prompt_cfg: PromptConfig) -> tuple[np.ndarray, np.ndarray, dict]:
    """(user ids [U] int64 = 1..U, vectors [U, H] float32, info) from training histories only."""
    texts = user_texts(dataset.items, split.train, prompt_cfg, dataset.name)
    vectors, info = _embed(texts, encoder, prompt_cfg, "users")
    info["history"] = "train"  # valid/test items never reach a user prompt
    return np.arange(1, len(texts) + 1, dtype=np.int64), vectors, info
