"""References, listing, tags, rollback, gc and verify."""

from __future__ import annotations

import numpy as np
import pytest
from store_helpers import make_data, same_bits

from embeddings_store import EmbeddingStore, ManifestInput, StoreError, VersionRef, parse_ref


def _versions(
    store: EmbeddingStore, minput: ManifestInput, n: int, dataset: str = "ds", kind: str = "items/x"
) -> list[VersionRef]:
    ids, x = make_data(20, 4)
    return [store.write(dataset, kind, ids, x + i, minput) for i in range(n)]


def test_parse_ref() -> None:
    p = parse_ref("movielens-100k/items/tslrec@current")
    assert (p.dataset, p.kind, p.selector) == ("movielens-100k", "items/tslrec", "current")
    p = parse_ref("items/tslrec", dataset="ml")
    assert (p.dataset, p.kind, p.selector) == ("ml", "items/tslrec", None)
    for bad in ("tslrec", "a/b/c/d", "items/x@", "../items/x", "ds/items/x@v1/../../etc"):
        with pytest.raises(StoreError):
            parse_ref(bad)
    with pytest.raises(StoreError, match="--dataset"):
        parse_ref("ml/items/x", dataset="other")


def test_resolve_selectors_and_dataset_inference(
    store: EmbeddingStore, minput: ManifestInput
) -> None:
    r1, r2 = _versions(store, minput, 2)
    assert store.resolve("items/x") == r2 and store.resolve("ds/items/x@current") == r2
    assert store.resolve(f"items/x@{r1.version}") == r1 and store.resolve("items/x@latest") == r2
    store.tag(r1, "paper")
    assert store.resolve("items/x@paper") == r1
    with pytest.raises(StoreError, match="neither a version id nor a tag"):
        store.resolve("items/x@nope")
    with pytest.raises(StoreError, match="no version v20200101"):
        store.resolve("items/x@v20200101T000000.000000Z-abcdef")
    with pytest.raises(StoreError, match="no dataset"):
        store.resolve("users/x")
    _versions(store, minput, 1, dataset="other")
    with pytest.raises(StoreError) as err:
        store.resolve("items/x")
    assert "several datasets (ds, other)" in str(err.value)
    assert store.resolve("items/x", dataset="ds") == r2


def test_list_marks_current_and_tags(store: EmbeddingStore, minput: ManifestInput) -> None:
    r1, r2 = _versions(store, minput, 2)
    _versions(store, minput, 1, kind="users/x")
    store.tag(r1, "paper")
    rows = store.list()
    assert [(r.kind, r.version, r.current, r.tags) for r in rows] == [
        ("items/x", r1.version, False, ["paper"]),
        ("items/x", r2.version, True, []),
        ("users/x", rows[2].version, True, []),
    ]
    assert rows[0].as_dict().keys() >= {
        "dataset",
        "kind",
        "version",
        "current",
        "count",
        "dim",
        "created_at",
    }
    assert (rows[0].count, rows[0].dim) == (20, 4)
    assert [r.kind for r in store.list(kind="users/x")] == ["users/x"]


def test_tags_are_validated_and_not_moved_silently(
    store: EmbeddingStore, minput: ManifestInput
) -> None:
    r1, r2 = _versions(store, minput, 2)
    store.tag(r1, "paper")
    store.tag(r1, "paper")  # idempotent
    with pytest.raises(StoreError, match="already names"):
        store.tag(r2, "paper")
    store.tag(r2, "paper", force=True)
    assert store.resolve("items/x@paper") == r2
    for bad in ("current", "latest", "-x", r1.version, "a/b"):
        with pytest.raises(StoreError, match="invalid tag"):
            store.tag(r1, bad)
    store.untag("ds", "items/x", "paper")
    with pytest.raises(StoreError, match="no tag"):
        store.untag("ds", "items/x", "paper")


def test_rollback(store: EmbeddingStore, minput: ManifestInput) -> None:
    r1, r2, r3 = _versions(store, minput, 3)
    assert store.rollback("ds", "items/x") == r2
    assert store.rollback("ds", "items/x") == r1
    with pytest.raises(StoreError, match="no version older"):
        store.rollback("ds", "items/x")
    assert store.rollback("ds", "items/x", to="latest") == r3
    assert store.rollback("ds", "items/x", to=r1.version) == r1
    _, x = make_data(20, 4)
    assert same_bits(store.read("ds/items/x")[1], x)  # CURRENT reads the rolled-back data


def test_gc_keeps_newest_tagged_and_current(store: EmbeddingStore, minput: ManifestInput) -> None:
    refs = _versions(store, minput, 6)
    store.tag(refs[0], "paper")
    store.rollback("ds", "items/x", to=refs[1].version)
    dry = store.gc("ds", "items/x", keep=2, dry_run=True)
    assert dry.removed == [refs[2].version, refs[3].version]
    assert len(store.list()) == 6
    report = store.gc("ds", "items/x", keep=2)
    assert report.removed == dry.removed
    assert [r.version for r in store.list()] == [refs[i].version for i in (0, 1, 4, 5)]
    assert store.resolve("items/x").version == refs[1].version
    assert not [p for p in store.kind("items/x").path.iterdir() if p.name.startswith(".trash")]
    with pytest.raises(StoreError):
        store.gc("ds", "items/x", keep=-1)
    with pytest.raises(StoreError, match="no such kind"):
        store.gc("ds", "items/none")
    with pytest.raises(StoreError, match="no such kind"):
        store.rollback("nope", "items/x")
    assert not (store.root / "nope").exists()


def test_verify_detects_tampering(store: EmbeddingStore, minput: ManifestInput) -> None:
    (ref,) = _versions(store, minput, 1)
    assert store.verify(ref).ok
    part = ref.path / "vectors.parquet"
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different content
    part.write_bytes(bytes(data))
    report = store.verify(ref)
    assert not report.ok and report.problems == ["vectors.parquet: sha256 mismatch"]
    (ref.path / "stray.txt").write_text("x")
    assert any("stray.txt" in p for p in store.verify(ref).problems)


def test_reindex_makes_a_new_version_with_lineage(
    store: EmbeddingStore, minput: ManifestInput
) -> None:
    from embeddings_store import IndexConfig

    (ref,) = _versions(store, minput.model_copy(update={"metric": "l2"}), 1)
    new = store.reindex(ref, IndexConfig(type="flat"))
    m = store.manifest(new)
    assert m.index is not None and m.parents[-1].version == ref.version
    assert same_bits(store.read(new)[1], store.read(ref)[1])
    assert np.array_equal(
        store.open_index(new).search(store.read(ref)[1][:2], 1)[0][:, 0], store.read_ids(ref)[:2]
    )


def test_reads_refuse_a_flipped_bit(store: EmbeddingStore, minput: ManifestInput) -> None:
    """One bit flipped inside vectors.parquet (same size): `verify` saw it before; now every
    read does too (ids, vectors, streamed chunks), instead of serving altered values."""
    (ref,) = _versions(store, minput, 1)
    store.read(ref)  # a good read first: its check is cached per (size, mtime)
    part = ref.path / "vectors.parquet"
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0x01
    part.write_bytes(bytes(data))
    for read in (store.read, store.read_ids, lambda r: list(store.iter_chunks(r))):
        with pytest.raises(StoreError, match=r"vectors.parquet: sha256 .* differs from the manifest"):
            read(ref)
