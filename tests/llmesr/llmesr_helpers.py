"""Shared constants and writers of the LLM-ESR tests."""

from __future__ import annotations

import numpy as np

ITEM_DIM, USER_DIM = 24, 32
TINY = {"model.dim": 16, "model.max_len": 20, "batch_size": 32, "epochs": 3, "patience": 10}


def write_users(store, dataset, vectors: np.ndarray, ids: np.ndarray, history: str = "train",
                kind: str = "users/test"):
    from embeddings_store import ManifestInput, Producer

    return store.write(dataset.name, kind, ids, vectors,
                       ManifestInput(dataset_fingerprint=dataset.fingerprint,
                                     producer=Producer(generator="test", config={"history": history})))
