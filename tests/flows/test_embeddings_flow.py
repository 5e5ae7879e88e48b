"""Stage 1 flow on synthetic data: store contents, manifest, and the cached re-run."""

from __future__ import annotations

import numpy as np

from embeddings_store import EmbeddingStore


def test_sasrec_id_generator_writes_item_table_and_caches(prefect_harness, tmp_path,
                                                          synthetic_dataset):
    from flows.embeddings import embeddings_flow

    kwargs = dict(dataset="synthetic", generators=["sasrec-id"],
                  configs={"sasrec-id": {"epochs": 2, "model.dim": 16, "model.max_len": 20}},
                  data_dir=str(tmp_path / "data"), store_root=str(tmp_path / "store"),
                  runs_dir=str(tmp_path / "runs"))
    refs = embeddings_flow(**kwargs)
    store = EmbeddingStore(tmp_path / "store")
    ref = store.resolve(refs["items/sasrec-id"])
    ids, vectors = store.read(ref)
    n_items = synthetic_dataset.n_items  # the same generator defaults as the fixture
    assert np.array_equal(ids, np.arange(1, n_items + 1)) and vectors.shape == (n_items, 16)
    assert np.isfinite(vectors).all() and np.abs(vectors).sum(1).min() > 0
    manifest = store.manifest(ref)
    assert manifest.producer.generator == "sasrec-id"
    assert 0 <= manifest.metrics["valid_full_ndcg@10"] <= 1

    again = embeddings_flow(**kwargs)
    assert again == refs  # cached: no new version
    assert len(store.list()) == 1
