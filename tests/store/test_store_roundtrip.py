"""Round trips: bitwise equal vectors and ids, whole and streamed, single and multi-part."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from store_helpers import make_data, same_bits

from embeddings_store import EmbeddingStore, ManifestInput, Parent, Producer, WriteOptions
from embeddings_store.writer import sha256_file


@pytest.mark.parametrize("dim", [1, 7, 64, 576])
def test_write_read_bitwise(store: EmbeddingStore, minput: ManifestInput, dim: int) -> None:
    ids, x = make_data(301, dim, seed=dim)
    x[0, 0] = -0.0  # sign of zero must survive
    x[1, 0] = np.float32(1e-45)  # a denormal too
    ref = store.write("ds", "items/x", ids, x, minput)
    got_ids, got = store.read(ref)
    assert got.dtype == np.float32 and got.shape == (301, dim)
    assert np.array_equal(got_ids, ids) and same_bits(got, x)
    assert store.resolve("ds/items/x@current") == ref


def test_single_row_group_read_is_zero_copy_and_read_only(
    store: EmbeddingStore, minput: ManifestInput
) -> None:
    ids, x = make_data(50, 16)
    ref = store.write("ds", "items/x", ids, x, minput)
    _, got = store.read(ref)
    assert not got.flags.owndata  # a view of the Arrow buffer, not a copy
    assert not got.flags.writeable
    with pytest.raises(ValueError):
        got[0, 0] = 1.0


@pytest.mark.parametrize("dim", [3, 64])
def test_chunked_write_many_row_groups_and_parts(
    store: EmbeddingStore, minput: ManifestInput, dim: int
) -> None:
    ids, x = make_data(1000, dim, seed=1)
    row_bytes = dim * 4 + 8
    opts = WriteOptions(row_group_bytes=row_bytes * 64, part_bytes=row_bytes * 64 * 3)
    sizes = [1, 2, 97, 300, 0, 150, 450]  # ragged chunks, one empty
    bounds = np.cumsum([0, *sizes])
    assert bounds[-1] == 1000
    chunks = ((ids[a:b], x[a:b]) for a, b in itertools.pairwise(bounds))
    ref = store.write_chunks("ds", "items/x", chunks, dim, minput, options=opts)
    m = store.manifest(ref)
    assert len(m.parts) == 6 and m.parts[0].file == "vectors-00000.parquet"
    assert sum(p.rows for p in m.parts) == m.count == 1000
    got_ids, got = store.read(ref)
    assert np.array_equal(got_ids, ids) and same_bits(got, x)
    streamed = list(store.iter_chunks(ref, max_bytes=row_bytes * 40))
    assert all(len(i) <= 40 for i, _ in streamed)
    assert np.array_equal(np.concatenate([i for i, _ in streamed]), ids)
    assert same_bits(np.concatenate([v for _, v in streamed]), x)


def test_streaming_producer_may_reuse_its_buffers(
    store: EmbeddingStore, minput: ManifestInput
) -> None:
    ids, x = make_data(500, 8, seed=2)
    buf_ids, buf_x = np.empty(70, np.int64), np.empty((70, 8), np.float32)

    def reusing():  # yields the same arrays every time, overwritten in place
        for a in range(0, 500, 70):
            n = min(70, 500 - a)
            buf_ids[:n], buf_x[:n] = ids[a : a + n], x[a : a + n]
            yield buf_ids[:n], buf_x[:n]

    opts = WriteOptions(row_group_bytes=(8 * 4 + 8) * 128)
    ref = store.write_chunks("ds", "items/x", reusing(), 8, minput, options=opts)
    got_ids, got = store.read(ref)
    assert np.array_equal(got_ids, ids) and same_bits(got, x)


def test_float64_input_is_cast_and_manifest_complete(store: EmbeddingStore) -> None:
    ids, x = make_data(40, 5)
    mean = [0.5] * 5
    info = ManifestInput(
        dataset_fingerprint="abc",
        producer=Producer(
            generator="semantic",
            model_id="smollm2",
            model_file_hash="h1",
            prompt_template="{title}",
            config={"pool": "mean"},
        ),
        metric="cosine",
        centered=True,
        mean=mean,
        parents=[Parent(kind="items/sasrec-id", version="v20260101T000000.000000Z-abcdef")],
        metrics={"loss": 0.25},
    )
    ref = store.write("ml", "items/semantic", ids, x.astype(np.float64), info)
    _, got = store.read(ref)
    assert same_bits(got, x)  # float32 -> float64 -> float32 is exact
    m = store.manifest(ref)
    assert (m.dataset.name, m.dataset.fingerprint, m.entity, m.kind) == (
        "ml",
        "abc",
        "items",
        "items/semantic",
    )
    assert (m.dim, m.count, m.dtype, m.metric, m.centered, m.mean) == (
        5,
        40,
        "float32",
        "cosine",
        True,
        mean,
    )
    assert m.producer.config == {"pool": "mean"} and m.parents[0].kind == "items/sasrec-id"
    assert m.metrics == {"loss": 0.25} and m.code_version and m.created_at.endswith("Z")
    for name, info_ in m.files.items():
        assert sha256_file(ref.path / name) == info_.sha256
    on_disk = json.loads((ref.path / "manifest.json").read_text())
    assert on_disk["schema_version"] == 1 and on_disk["version"] == ref.version


def test_id_map_both_ways(store: EmbeddingStore, minput: ManifestInput) -> None:
    ids, x = make_data(100, 4)
    ref = store.write("ds", "items/x", ids[::-1].copy(), x, minput)
    idmap = store.id_map(ref)
    rows = idmap.rows_of(np.array([ids[-1], ids[0], 5, 1003]))
    assert rows.tolist() == [0, 99, -1, -1]
    assert idmap.ids_of(np.array([[0, 99], [-1, 1]])).tolist() == [[ids[-1], ids[0]], [-1, ids[-2]]]


def test_nan_policy_drop_records_dropped_ids(store: EmbeddingStore, minput: ManifestInput) -> None:
    ids, x = make_data(20, 3)
    x[4, 1] = np.nan
    x[9, 0] = np.inf
    ref = store.write("ds", "items/x", ids, x, minput, nan_policy="drop")
    got_ids, got = store.read(ref)
    keep = np.ones(20, bool)
    keep[[4, 9]] = False
    assert np.array_equal(got_ids, ids[keep]) and same_bits(got, x[keep])
    m = store.manifest(ref)
    assert m.dropped_count == 2 and m.dropped_ids_sample == [int(ids[4]), int(ids[9])]


def test_every_write_is_a_new_immutable_version(
    store: EmbeddingStore, minput: ManifestInput
) -> None:
    ids, x = make_data(10, 2)
    r1 = store.write("ds", "items/x", ids, x, minput)
    r2 = store.write("ds", "items/x", ids, x + 1, minput)
    assert r1.version < r2.version and store.resolve("ds/items/x").version == r2.version
    assert same_bits(store.read(r1)[1], x) and same_bits(store.read(r2)[1], x + 1)
    r3 = store.write("ds", "items/x", ids, x + 2, minput, set_current=False)
    assert store.resolve("items/x").version == r2.version
    assert store.resolve("items/x@latest").version == r3.version
