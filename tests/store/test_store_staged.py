"""Staged versions: parts written by separate producers, published only when all are in."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import numpy as np
import pytest
from store_helpers import make_data, same_bits

from embeddings_store import (
    EmbeddingStore,
    IndexConfig,
    ManifestInput,
    Producer,
    StagedVersion,
    StoreError,
)


def _write_in_child(staged: StagedVersion, part: int, ids: np.ndarray, vectors: np.ndarray) -> None:
    staged.write_part(part, ids, vectors)


def _tmp_dirs(store: EmbeddingStore, kind: str = "items/x") -> list[Path]:
    path = store.root / "ds" / kind
    return [p for p in path.iterdir() if p.name.startswith(".tmp-")] if path.is_dir() else []


def test_parts_from_other_processes_commit_to_one_version(store, minput) -> None:
    ids, x = make_data(300, 8)
    shards = [np.arange(0, 300, 3), np.arange(1, 300, 3), np.arange(2, 300, 3)]
    with store.stage("ds", "items/x", n_parts=3) as staged:
        ctx = mp.get_context("spawn")  # a fresh interpreter: the handle must pickle
        with ctx.Pool(2) as pool:
            pool.starmap(_write_in_child, [(staged, 2, ids[shards[2]], x[shards[2]]),
                                           (staged, 0, ids[shards[0]], x[shards[0]])])
        staged.write_part(1, ids[shards[1]], x[shards[1]], scratch="raw")  # scratch is not a part
        assert staged.missing_parts() == [1]
        staged.write_part(1, ids[shards[1]], x[shards[1]] * 2)
        staged.write_part(1, ids[shards[1]], x[shards[1]])  # a retried part replaces the first
        got_ids, got = staged.read_part(1, scratch="raw")
        assert same_bits(got, x[shards[1]]) and np.array_equal(got_ids, ids[shards[1]])
        ref = store.commit(staged, minput, expected_ids=ids, index=IndexConfig(type="flat"))
    assert store.list()[0].version == ref.version and store.resolve("ds/items/x").version == ref.version
    out_ids, out = store.read(ref)
    order = np.argsort(out_ids)
    assert np.array_equal(out_ids[order], ids) and same_bits(out[order], x)
    m = store.manifest(ref)
    assert (m.count, m.dim, [p.file for p in m.parts]) == (
        300, 8, ["vectors-00000.parquet", "vectors-00001.parquet", "vectors-00002.parquet"])
    assert store.verify(ref).ok  # no scratch or private files left in the version
    assert _tmp_dirs(store) == []


def test_missing_part_publishes_nothing_and_cleans_up(store, minput) -> None:
    ids, x = make_data(40, 4)
    old = store.write("ds", "items/x", ids, x, minput)
    with pytest.raises(StoreError, match="1 of 2 parts missing"), \
            store.stage("ds", "items/x", n_parts=2) as staged:
        staged.write_part(0, ids, x)
        store.commit(staged, minput)
    assert [v.version for v in store.list()] == [old.version]
    assert store.resolve("ds/items/x").version == old.version
    assert _tmp_dirs(store) == []


def test_commit_checks_ids_and_parts(store, minput) -> None:
    ids, x = make_data(40, 4)
    with store.stage("ds", "items/x", n_parts=2) as staged:
        staged.write_part(0, ids[:25], x[:25])
        staged.write_part(1, ids[20:], x[20:])  # rows 20..24 twice
        with pytest.raises(StoreError, match="duplicate ids"):
            store.commit(staged, minput)
        staged.write_part(1, ids[25:39], x[25:39])
        with pytest.raises(StoreError, match="1 missing"):
            store.commit(staged, minput, expected_ids=ids)
        with pytest.raises(StoreError, match="outside"):
            staged.write_part(2, ids[39:], x[39:])
    assert store.list() == [] and not (store.root / "ds").exists()


def test_staged_validation_of_parts(store, minput) -> None:
    ids, x = make_data(10, 4)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    with store.stage("ds", "items/x", n_parts=1, dim=4, normalized=True) as staged:
        with pytest.raises(StoreError, match="norm"):
            staged.write_part(0, ids, x)
        bad = unit.copy()
        bad[3, 1] = np.nan
        with pytest.raises(StoreError, match="NaN"):
            staged.write_part(0, ids, bad)
        with pytest.raises(StoreError, match="wrong dim"):
            staged.write_part(0, ids, unit[:, :3])
        staged.write_part(0, ids, x * 5, scratch="raw")  # scratch: any norm
        staged.write_part(0, ids, unit)
        with pytest.raises(StoreError, match="normalized"):
            store.commit(staged, minput)  # the manifest must agree with the staging
        ref = store.commit(staged, minput.model_copy(update={"normalized": True}))
        with pytest.raises(StoreError, match="not staged any more"):
            store.commit(staged, minput)
    assert store.manifest(ref).normalized


def test_gc_keeps_a_live_staging_and_removes_a_dead_one(store, minput) -> None:
    ids, x = make_data(10, 4)
    store.write("ds", "items/x", ids, x, minput)
    with store.stage("ds", "items/x", n_parts=1) as staged:
        staged.write_part(0, ids, x)
        report = store.gc("ds", "items/x", keep=1)
        assert report.cleaned == [] and Path(staged.path).is_dir()
    assert not Path(staged.path).exists()
    with pytest.raises(StoreError, match="gone"):
        staged.write_part(0, ids, x)
    store_b = EmbeddingStore(store.root)  # a second handle sees the same state
    assert len(store_b.list()) == 1


def test_manifest_input_roundtrip_through_commit(store) -> None:
    ids, x = make_data(20, 3)
    info = ManifestInput(dataset_fingerprint="fp", producer=Producer(generator="t"), normalized=False,
                         centered=True, mean=[0.0, 1.0, 2.0])
    with store.stage("ds", "items/x", n_parts=2) as staged:
        staged.write_part(1, ids[10:], x[10:])
        staged.write_part(0, ids[:10], x[:10])
        ref = store.commit(staged, info, expected_ids=ids)
    m = store.manifest(ref)
    assert m.mean == [0.0, 1.0, 2.0] and m.centered and m.dataset.fingerprint == "fp"
    out_ids, out = store.read(ref)
    assert np.array_equal(out_ids, ids) and same_bits(out, x)  # part order = id order here
