"""Index choice (pure), search returning ids, mmap loading, tuning, k-means."""

from __future__ import annotations

import faiss
import numpy as np
import pytest
from store_helpers import make_data

from embeddings_store import (
    EmbeddingStore,
    IndexConfig,
    ManifestInput,
    StoreError,
    choose_index,
    kmeans,
)
from embeddings_store.index_choice import nlist_for, nprobe_for, pq_m_for

GiB = 1 << 30


# ---- pure heuristics --------------------------------------------------------------


def test_small_sets_get_exact_flat() -> None:
    c = choose_index(1_682, 576, "cosine")
    assert (c.type, c.factory, c.train_size) == ("flat", "IDMap,Flat", 0)
    assert choose_index(50_000, 64, "ip").type == "flat"


def test_mid_sized_low_dim_sets_get_hnsw_high_dim_get_ivf() -> None:
    c = choose_index(80_000, 64, "ip")
    assert c.type == "hnsw" and c.factory == "IDMap,HNSW32,Flat" and c.params["m"] == 32
    assert choose_index(80_000, 576, "ip").type == "ivf_flat"


def test_large_sets_get_ivf_flat_with_sane_lists() -> None:
    c = choose_index(1_000_000, 64, "cosine")
    assert c.type == "ivf_flat" and c.factory == "IVF2048,Flat"
    assert c.params == {"nlist": 2048, "nprobe": 64}
    assert 39 * 2048 <= c.train_size <= 1_000_000
    assert choose_index(200_000, 576, "ip").factory == "IVF1024,Flat"


def test_memory_budget_pushes_to_ivf_pq() -> None:
    c = choose_index(10_000_000, 128, "ip", IndexConfig(memory_budget_bytes=2 * GiB))
    assert c.type == "ivf_pq" and c.estimated_bytes <= 2 * GiB
    assert 128 % c.params["m"] == 0 and c.factory.startswith("IVF")
    roomy = choose_index(10_000_000, 128, "ip", IndexConfig(memory_budget_bytes=64 * GiB))
    assert roomy.type == "ivf_flat"


def test_explicit_type_and_overrides_win() -> None:
    c = choose_index(1_000, 8, "l2", IndexConfig(type="ivf_flat", nlist=16, nprobe=4))
    assert (c.factory, c.params) == ("IVF16,Flat", {"nlist": 16, "nprobe": 4})
    assert choose_index(10, 8, "ip", IndexConfig(type="ivf_flat")).params["nlist"] == 1


def test_helper_functions() -> None:
    assert nlist_for(10) == 1 and nlist_for(1_000_000) == 2048 and nlist_for(100_000) == 512
    assert all(nlist_for(n) * 39 <= n for n in (100, 1_000, 50_000))
    assert nprobe_for(2048) == 64 and nprobe_for(16) == 8 and nprobe_for(4) == 4
    assert pq_m_for(576, 100) == 96 and pq_m_for(64, 1000) == 32 and pq_m_for(7, 3) == 1
    with pytest.raises(StoreError):
        pq_m_for(64, 0.5)
    with pytest.raises(StoreError):
        choose_index(0, 8, "ip")
    with pytest.raises(StoreError):
        choose_index(10, 8, "hamming")


# ---- building and searching -------------------------------------------------------

CONFIGS = {
    "flat": IndexConfig(type="flat"),
    "hnsw": IndexConfig(type="hnsw", hnsw_m=8, ef_construction=32),
    "ivf_flat": IndexConfig(type="ivf_flat", nlist=16),
    "ivf_pq": IndexConfig(
        type="ivf_pq", nlist=8, pq_m=16, pq_nbits=4
    ),  # small codebooks train fast
}


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("metric", ["ip", "cosine", "l2"])
def test_search_returns_ids_not_positions(
    store: EmbeddingStore, minput: ManifestInput, name: str, metric: str
) -> None:
    ids, x = make_data(3_000, 16, seed=3, clusters=30)
    x /= np.linalg.norm(x, axis=1, keepdims=True)  # so every metric ranks a vector first for itself
    info = minput.model_copy(update={"metric": metric})
    ref = store.write("ds", "items/x", ids, x, info, index=CONFIGS[name])
    m = store.manifest(ref)
    assert m.index is not None and m.index.type == name and m.index.ntotal == 3_000
    assert "index.faiss" in m.files
    index = store.open_index(ref)
    got, scores = index.search(x[:50], 5)  # stored vectors query themselves
    assert got.dtype == np.int64 and scores.dtype == np.float32 and got.shape == (50, 5)
    assert np.isin(got, ids).all()  # ids, never row positions (which are < 3000)
    if name == "ivf_pq":  # lossy codes: itself somewhere near the top
        assert np.mean((got == ids[:50, None]).any(axis=1)) >= 0.8
    else:
        assert np.mean(got[:, 0] == ids[:50]) >= 0.95


def test_exact_search_matches_brute_force_and_missing_slots_are_minus_one(
    store: EmbeddingStore, minput: ManifestInput
) -> None:
    ids, x = make_data(7, 4, seed=5)
    ref = store.write("ds", "items/x", ids, x, minput, index=IndexConfig(type="flat"))
    got, scores = store.open_index(ref).search(x[2], 10)  # 1-D query, k > N
    order = np.argsort(-(x @ x[2]), kind="stable")
    assert got[0, :7].tolist() == ids[order].tolist()
    assert got[0, 7:].tolist() == [-1, -1, -1]
    assert np.allclose(scores[0, :7], (x @ x[2])[order], rtol=1e-5)


def test_version_without_index_searches_exactly(
    store: EmbeddingStore, minput: ManifestInput
) -> None:
    ids, x = make_data(200, 8, seed=6)
    ref = store.write("ds", "items/x", ids, x, minput.model_copy(update={"metric": "l2"}))
    got, _ = store.open_index(ref).search(x[:3], 1)
    assert got[:, 0].tolist() == ids[:3].tolist()
    with pytest.raises(StoreError, match="no index"):
        store.open_index(ref, exact_fallback=False)


def test_index_is_memory_mapped_and_batched_search_is_consistent(
    store: EmbeddingStore, minput: ManifestInput
) -> None:
    ids, x = make_data(2_000, 16, seed=7, clusters=20)
    ref = store.write(
        "ds", "items/x", ids, x, minput, index=IndexConfig(type="ivf_flat", nlist=16, nprobe=16)
    )
    mapped = store.open_index(ref, mmap=True)
    loaded = store.open_index(ref, mmap=False)
    a, sa = mapped.search(x[:300], 5, batch_size=7)
    b, sb = loaded.search(x[:300], 5)
    assert np.array_equal(a, b) and np.allclose(sa, sb)


def test_build_tunes_nprobe_to_the_recall_target(
    store: EmbeddingStore, minput: ManifestInput
) -> None:
    ids, x = make_data(6_000, 16, seed=8, clusters=40)
    cfg = IndexConfig(type="ivf_flat", nlist=64, target_recall=0.95, tune_queries=100)
    m = store.manifest(store.write("ds", "items/x", ids, x, minput, index=cfg))
    assert m.index is not None
    p = m.index.params
    assert 1 <= p["nprobe"] <= 64 and p["tuned_recall_at_10"] >= 0.95 and p["tune_queries"] == 100
    fixed = store.manifest(
        store.write("ds", "items/y", ids, x, minput, index=cfg.model_copy(update={"nprobe": 3}))
    )
    assert fixed.index is not None and fixed.index.params == {"nlist": 64, "nprobe": 3}


def test_search_parameter_override_and_bad_queries(
    store: EmbeddingStore, minput: ManifestInput
) -> None:
    ids, x = make_data(1_000, 8, seed=9)
    info = minput.model_copy(update={"metric": "l2"})
    ref = store.write(
        "ds", "items/x", ids, x, info, index=IndexConfig(type="ivf_flat", nlist=8, nprobe=1)
    )
    index = store.open_index(ref)
    full, _ = index.search(x[:20], 3, nprobe=8)  # exhaustive for this call only
    assert full[:, 0].tolist() == ids[:20].tolist()
    assert faiss.extract_index_ivf(index.index).nprobe == 1
    with pytest.raises(StoreError, match="shape"):
        index.search(x[:2, :4], 3)
    with pytest.raises(StoreError, match="HNSW"):
        index.search(x[:2], 3, ef_search=10)
    with pytest.raises(StoreError, match="NaN"):
        index.search(np.full((1, 8), np.nan, np.float32), 3)


@pytest.mark.gpu
@pytest.mark.skipif(faiss.get_num_gpus() == 0, reason="faiss sees no GPU")
def test_gpu_build_is_saved_as_cpu_index(store: EmbeddingStore, minput: ManifestInput) -> None:
    ids, x = make_data(5_000, 32, seed=10, clusters=20)
    ref = store.write(
        "ds", "items/x", ids, x, minput, index=IndexConfig(type="ivf_flat", nlist=32, use_gpu=True)
    )
    m = store.manifest(ref)
    assert m.index is not None and m.index.gpu
    got, _ = store.open_index(ref).search(x[:10], 1)
    assert got[:, 0].tolist() == ids[:10].tolist()


# ---- k-means ------------------------------------------------------------------------


def test_kmeans_is_seeded_and_reports_full_inertia() -> None:
    _, x = make_data(2_000, 8, seed=11, clusters=5)
    a = kmeans(x, 5, seed=1, niter=10)
    b = kmeans(x, 5, seed=1, niter=10)
    assert a.centroids.shape == (5, 8) and a.assignment.shape == (2_000,)
    assert np.array_equal(a.assignment, b.assignment) and np.array_equal(a.centroids, b.centroids)
    d2 = ((x - a.centroids[a.assignment]) ** 2).sum()
    assert np.isclose(a.inertia, d2, rtol=1e-3)
    assert set(np.unique(a.assignment)) <= set(range(5))
    with pytest.raises(StoreError):
        kmeans(x[:3], 5)
