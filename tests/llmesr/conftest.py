"""Random item and user tables for the synthetic dataset, written to a temporary store."""

from __future__ import annotations

import numpy as np
import pytest
from llmesr_helpers import ITEM_DIM, USER_DIM, write_users


@pytest.fixture(scope="session")
def llmesr_store(tmp_path_factory, synthetic_dataset):
    """(store, items ref, users ref): random vectors; the user rows written in shuffled order."""
    from embeddings_store import EmbeddingStore, ManifestInput, Producer

    ds = synthetic_dataset
    rng = np.random.default_rng(0)
    store = EmbeddingStore(tmp_path_factory.mktemp("llmesr-store"))
    items = store.write(ds.name, "items/test", np.arange(1, ds.n_items + 1),
                        rng.normal(size=(ds.n_items, ITEM_DIM)).astype(np.float32),
                        ManifestInput(dataset_fingerprint=ds.fingerprint,
                                      producer=Producer(generator="test")))
    order = rng.permutation(ds.n_users)
    users = write_users(store, ds, rng.normal(size=(ds.n_users, USER_DIM)).astype(np.float32)[order],
                        order + 1)
    return store, str(items), str(users)


@pytest.fixture(scope="session")
def item_vectors(llmesr_store):
    store, items, _ = llmesr_store
    return np.asarray(store.read(items)[1])
