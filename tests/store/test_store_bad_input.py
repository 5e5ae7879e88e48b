"""Bad input → StoreError with one line naming the problem, and nothing written."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from store_helpers import make_data

from embeddings_store import EmbeddingStore, ManifestInput, Producer, StoreError, WriteOptions


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _assert_nothing_written(store: EmbeddingStore) -> None:
    assert store.list() == []
    assert _files(store.root) == []
    assert not [p for p in store.root.rglob(".tmp-*")] if store.root.exists() else True


def _one_line(err: pytest.ExceptionInfo[StoreError]) -> str:
    msg = str(err.value)
    assert "\n" not in msg and isinstance(err.value, ValueError)
    return msg


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_is_refused(store: EmbeddingStore, minput: ManifestInput, bad: float) -> None:
    ids, x = make_data(50, 4)
    x[7, 2] = bad
    with pytest.raises(StoreError) as err:
        store.write("ds", "items/x", ids, x, minput)
    assert "NaN/Inf" in _one_line(err) and str(ids[7]) in str(err.value)
    _assert_nothing_written(store)


def test_wrong_dim(store: EmbeddingStore, minput: ManifestInput) -> None:
    ids, x = make_data(10, 4)
    with pytest.raises(StoreError, match="wrong dim 4, expected 8"):
        store.write("ds", "items/x", ids, x, minput, dim=8)
    with pytest.raises(StoreError, match="2-D"):
        store.write("ds", "items/x", ids, x[0], minput)
    _assert_nothing_written(store)


def test_wrong_dim_in_a_later_chunk_leaves_nothing(
    store: EmbeddingStore, minput: ManifestInput
) -> None:
    ids, x = make_data(100, 4)

    def chunks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        yield ids[:50], x[:50]
        yield ids[50:], np.zeros((50, 5), np.float32)

    with pytest.raises(StoreError, match="chunk 1: wrong dim 5"):
        store.write_chunks(
            "ds", "items/x", chunks(), 4, minput, options=WriteOptions(row_group_bytes=10 * 24)
        )
    assert not list(store.root.rglob("*"))  # not even an empty kind folder


def test_duplicate_ids_within_and_across_chunks(
    store: EmbeddingStore, minput: ManifestInput
) -> None:
    ids, x = make_data(10, 3)
    dup = ids.copy()
    dup[5] = dup[2]
    with pytest.raises(StoreError) as err:
        store.write("ds", "items/x", dup, x, minput)
    assert "duplicate ids" in _one_line(err) and str(dup[2]) in str(err.value)
    with pytest.raises(StoreError, match="duplicate"):
        store.write_chunks("ds", "items/x", [(ids[:5], x[:5]), (ids[:5], x[5:])], 3, minput)
    assert not list(store.root.rglob("*"))


@pytest.mark.parametrize(
    "ids",
    [
        pa.array([1, None, 3], type=pa.int64()),
        np.array([1, None, 3], dtype=object),
        np.ma.masked_array([1, 2, 3], mask=[0, 1, 0]),
    ],
    ids=["arrow", "object", "masked"],
)
def test_null_ids(store: EmbeddingStore, minput: ManifestInput, ids: object) -> None:
    with pytest.raises(StoreError, match="null ids"):
        store.write("ds", "items/x", ids, np.zeros((3, 2), np.float32), minput)
    _assert_nothing_written(store)


def test_non_integer_ids(store: EmbeddingStore, minput: ManifestInput) -> None:
    with pytest.raises(StoreError, match="integers"):
        store.write("ds", "items/x", np.array([1.0, 2.5]), np.zeros((2, 2), np.float32), minput)


def test_ids_and_vectors_count_mismatch(store: EmbeddingStore, minput: ManifestInput) -> None:
    ids, x = make_data(10, 3)
    with pytest.raises(StoreError, match="9 ids but 10 vectors"):
        store.write("ds", "items/x", ids[:9], x, minput)
    _assert_nothing_written(store)


def test_ids_must_cover_the_catalogue(store: EmbeddingStore, minput: ManifestInput) -> None:
    ids, x = make_data(10, 3)
    catalogue = np.append(ids[1:], 5)  # one missing, one unexpected
    with pytest.raises(StoreError) as err:
        store.write("ds", "items/x", ids, x, minput, expected_ids=catalogue)
    assert "1 missing (5)" in _one_line(err) and f"1 unexpected ({ids[0]})" in str(err.value)
    _assert_nothing_written(store)
    store.write("ds", "items/x", ids, x, minput, expected_ids=ids[::-1])  # order is free


def test_manifest_count_disagreeing_with_the_file_is_refused_on_read(
    store: EmbeddingStore, minput: ManifestInput
) -> None:
    ids, x = make_data(10, 3)
    ref = store.write("ds", "items/x", ids, x, minput)
    path = ref.path / "manifest.json"
    raw = json.loads(path.read_text())
    raw["count"], raw["parts"][0]["rows"] = 11, 11
    path.write_text(json.dumps(raw))
    with pytest.raises(StoreError) as err:
        store.read(ref)
    assert "10 rows, manifest says 11" in _one_line(err)
    raw["count"] = 12  # parts and count disagree inside the manifest itself
    path.write_text(json.dumps(raw))
    with pytest.raises(StoreError, match="invalid manifest"):
        store.manifest(ref)


@pytest.mark.parametrize("keep", [0.5, 0.98])
def test_truncated_parquet_is_refused_on_read(
    store: EmbeddingStore, minput: ManifestInput, keep: float
) -> None:
    ids, x = make_data(500, 8)
    ref = store.write("ds", "items/x", ids, x, minput)
    part = ref.path / "vectors.parquet"
    data = part.read_bytes()
    part.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(StoreError) as err:
        store.read(ref)
    assert "vectors.parquet" in _one_line(err) and "truncated" in str(err.value)
    with pytest.raises(StoreError):
        list(store.iter_chunks(ref))
    assert not store.verify(ref).ok


def test_truncated_parquet_with_matching_manifest_size_is_still_an_error(
    store: EmbeddingStore, minput: ManifestInput
) -> None:
    ids, x = make_data(500, 8)
    ref = store.write("ds", "items/x", ids, x, minput)
    part = ref.path / "vectors.parquet"
    part.write_bytes(part.read_bytes()[:-100])
    path = ref.path / "manifest.json"
    raw = json.loads(path.read_text())
    raw["files"]["vectors.parquet"]["size"] = part.stat().st_size
    raw["files"]["vectors.parquet"]["sha256"] = hashlib.sha256(part.read_bytes()).hexdigest()
    path.write_text(json.dumps(raw))  # size and checksum agree: Parquet itself must refuse
    with pytest.raises(StoreError, match="unreadable or truncated Parquet"):
        store.read(ref)


def test_newer_manifest_schema_is_refused(store: EmbeddingStore, minput: ManifestInput) -> None:
    ids, x = make_data(5, 2)
    ref = store.write("ds", "items/x", ids, x, minput)
    path = ref.path / "manifest.json"
    raw = json.loads(path.read_text())
    raw["schema_version"] = 2
    raw["something_new"] = True
    path.write_text(json.dumps(raw))
    for call in (
        lambda: store.manifest(ref),
        lambda: store.read(ref),
        lambda: store.open_index(ref),
    ):
        with pytest.raises(StoreError) as err:
            call()
        assert "schema_version 2 is newer" in _one_line(err) and "manifest.json" in str(err.value)
    assert store.list()[0].error is not None  # listed, but flagged, never misread


def test_normalized_claim_is_checked(store: EmbeddingStore) -> None:
    ids, x = make_data(10, 3)
    info = ManifestInput(dataset_fingerprint="f", producer=Producer(generator="t"), normalized=True)
    with pytest.raises(StoreError, match="norm != 1"):
        store.write("ds", "items/x", ids, x, info)
    store.write("ds", "items/x", ids, x / np.linalg.norm(x, axis=1, keepdims=True), info)


@pytest.mark.parametrize(
    ("dataset", "kind"),
    [
        ("../evil", "items/x"),
        ("ds", "items/../x"),
        ("ds", "items"),
        (".hidden", "items/x"),
        ("ds", "items/x/y"),
    ],
)
def test_names_cannot_escape_the_store(
    store: EmbeddingStore, minput: ManifestInput, dataset: str, kind: str
) -> None:
    ids, x = make_data(3, 2)
    with pytest.raises(StoreError, match="invalid"):
        store.write(dataset, kind, ids, x, minput)
    _assert_nothing_written(store)


def test_empty_and_mean_mismatch(store: EmbeddingStore, minput: ManifestInput) -> None:
    with pytest.raises(StoreError, match="no vectors"):
        store.write("ds", "items/x", np.empty(0, np.int64), np.empty((0, 3), np.float32), minput)
    with pytest.raises(StoreError, match="no vectors"):
        store.write_chunks("ds", "items/x", [], 3, minput)
    info = minput.model_copy(update={"centered": True, "mean": [0.0, 1.0]})
    ids, x = make_data(4, 3)
    with pytest.raises(StoreError, match="mean has 2 values"):
        store.write("ds", "items/x", ids, x, info)
    assert store.list() == []
