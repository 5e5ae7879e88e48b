"""Shared TSLRec test helpers (a module with a unique name: `conftest` is ambiguous across
test folders)."""

from __future__ import annotations

import numpy as np

K = 8


def item_table(dataset, dim: int = 16, seed: int = 0) -> np.ndarray:
    """[N, dim] vectors: one direction per synthetic theme (from the items' category path)
    plus noise, so k-means has clusters to find, as in a trained SASRec table."""
    themes = [c.split(", ")[1] for c in dataset.items.sort("item_id")["categories"].to_list()]
    names = sorted(set(themes))
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(names), dim))
    return (centres[[names.index(t) for t in themes]]
            + 0.3 * rng.normal(size=(len(themes), dim))).astype(np.float32)


def write_sasrec_table(store, dataset) -> str:
    from embeddings_store import ManifestInput, Producer

    ids = np.arange(1, dataset.n_items + 1, dtype=np.int64)
    manifest = ManifestInput(dataset_fingerprint=dataset.fingerprint,
                             producer=Producer(generator="sasrec-id"), metric="ip")
    return str(store.write(dataset.name, "items/sasrec-id", ids, item_table(dataset), manifest,
                           expected_ids=ids))
