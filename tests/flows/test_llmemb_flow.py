"""The umbrella embeddings flow runs LLMEmb end to end on a tiny random LLaMA: SCFT → RAT →
the fused RAT + SCFT table, lineage in the manifests, the cached re-run, and a config change
that retrains only what depends on it."""

from __future__ import annotations

import numpy as np
from tiny_models import save_tiny_llama, word_tokenizer

from embeddings_store import EmbeddingStore

SRS = {"epochs": 2, "model.dim": 16, "model.max_len": 20, "threads": 1}


def test_llmemb_flow_writes_scft_and_rat_with_lineage_and_caches(prefect_harness, tmp_path,
                                                                 synthetic_dataset):
    from flows.embeddings import embeddings_flow
    from pipeline.prompts import PromptConfig, item_texts

    tok = word_tokenizer(item_texts(synthetic_dataset.items, PromptConfig())[1], cls=False)
    llm = {"source": str(save_tiny_llama(tmp_path / "llama", tok)), "dtype": "fp32",
           "device": "cpu", "batch_size": 32}
    kwargs = dict(dataset="synthetic", generators=["fused"], llm=llm, configs={
                      "sasrec-id": SRS,
                      "llmemb-scft": {"max_steps": 2, "batch_size": 8, "max_length": 32,
                                      "save_steps": 2, "encode_batch_size": 64},
                      "llmemb": {"srs_overrides": SRS, "pca_dim": 16}},
                  data_dir=str(tmp_path / "data"), store_root=str(tmp_path / "store"),
                  runs_dir=str(tmp_path / "runs"))
    refs = embeddings_flow(**kwargs)
    assert set(refs) == {"items/sasrec-id", "items/llmemb-scft", "items/llmemb-rat", "items/fused"}

    store = EmbeddingStore(tmp_path / "store")
    n = synthetic_dataset.n_items
    scft_ids, scft_vectors = store.read(store.resolve(refs["items/llmemb-scft"]))
    rat_ref = store.resolve(refs["items/llmemb-rat"])
    rat_ids, rat_vectors = store.read(rat_ref)
    assert np.array_equal(scft_ids, np.arange(1, n + 1)) and scft_vectors.shape == (n, 32)
    assert np.array_equal(rat_ids, np.arange(1, n + 1)) and rat_vectors.shape == (n, 16)
    assert np.isfinite(rat_vectors).all() and np.abs(rat_vectors).sum(1).min() > 0
    # RAT names both of its inputs, so a new SCFT or SASRec version is traceable.
    parents = {(p.kind, p.version) for p in store.manifest(rat_ref).parents}
    for kind in ("items/llmemb-scft", "items/sasrec-id"):
        upstream = store.resolve(refs[kind])
        assert (upstream.kind, upstream.version) in parents

    # The fused table: both parts, each centred to the same total variance, in `parts` order.
    from pipeline.methods.fused.write import fuse_tables

    fused_ref = store.resolve(refs["items/fused"])
    fused_ids, fused = store.read(fused_ref)
    assert np.array_equal(fused_ids, np.arange(1, n + 1)) and fused.shape == (n, 16 + 32)
    assert np.allclose(fused, fuse_tables([rat_vectors, scft_vectors]), atol=1e-6)
    assert np.allclose((fused[:, :16] ** 2).sum(), (fused[:, 16:] ** 2).sum(), rtol=1e-4)
    assert {p.version for p in store.manifest(fused_ref).parents} == {
        rat_ref.version, store.resolve(refs["items/llmemb-scft"]).version}

    assert embeddings_flow(**kwargs) == refs  # nothing changed: every task from the cache
    assert len(store.list()) == 4

    # One more SCFT step: SCFT and RAT retrain, the SASRec teacher is reused.
    kwargs["configs"]["llmemb-scft"] = {**kwargs["configs"]["llmemb-scft"], "max_steps": 3}
    changed = embeddings_flow(**kwargs)
    assert changed["items/sasrec-id"] == refs["items/sasrec-id"]
    assert changed["items/llmemb-scft"] != refs["items/llmemb-scft"]
    assert changed["items/llmemb-rat"] != refs["items/llmemb-rat"]
    assert changed["items/fused"] != refs["items/fused"]
