"""Fixtures of the comparison's CLI tests."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def store_with_items(tmp_path):
    """A store with item kinds of two datasets: `synthetic` (semantic-a and the excluded
    sasrec-id) and `other` (semantic-b)."""
    from embeddings_store import EmbeddingStore, ManifestInput, Producer

    store = EmbeddingStore(tmp_path / "store")
    vecs = np.ones((5, 4), np.float32)
    for dataset, kind in (("synthetic", "items/semantic-a"), ("synthetic", "items/sasrec-id"),
                          ("other", "items/semantic-b")):
        store.write(dataset, kind, np.arange(1, 6), vecs,
                    ManifestInput(dataset_fingerprint="f", producer=Producer(generator="t"),
                                  code_version="test"))
    return tmp_path / "store"
