"""Sharded semantic generation writes the very bytes of the one-process generator."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from tiny_models import save_tiny_llama, word_tokenizer

from embeddings_store import EmbeddingStore, StoreError
from pipeline.errors import InputError
from pipeline.methods.semantic.sharded import (
    clear_encoders,
    entity_texts,
    part_count,
    shard_rows,
    write_semantic_sharded,
)
from pipeline.methods.semantic.write import SemanticConfig, write_semantic


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.array_equal(np.ascontiguousarray(a).view(np.uint32),
                                                 np.ascontiguousarray(b).view(np.uint32))


@pytest.fixture(scope="module")
def sharded_cfg(synthetic_dataset, tmp_path_factory) -> SemanticConfig:
    """A tiny random LLaMA whose vocabulary covers the synthetic item and user texts."""
    from pipeline.llm import LLMSpec

    base = SemanticConfig()
    texts = entity_texts(synthetic_dataset, "items", base)[1] + \
        entity_texts(synthetic_dataset, "users", base)[1]
    folder = save_tiny_llama(tmp_path_factory.mktemp("tiny-sharded"), word_tokenizer(texts, cls=False))
    spec = LLMSpec(source=str(folder), name="tiny", dtype="fp32", device="cpu", batch_size=8)
    return SemanticConfig(model=spec)


def test_shard_rows_are_whole_batches_of_the_global_order() -> None:
    lengths = np.array([3, 9, 9, 1, 4, 4, 4, 7, 2, 9, 5])
    rows = shard_rows(lengths, 3, 2)
    order = np.argsort(-lengths, kind="stable")
    assert np.array_equal(np.concatenate(rows), order)  # every row once, in encoder order
    assert [len(r) for r in rows] == [4, 4, 3]  # 6 batches of 2 dealt 2-2-2, last one short
    assert part_count(11, 10, 2) == 6 and part_count(11, 3, 2) == 3 and part_count(1, 4, 8) == 1
    with pytest.raises(InputError):
        part_count(11, 0, 2)


def test_sharded_run_is_bitwise_the_one_process_run(synthetic_dataset, synthetic_split,
                                                    sharded_cfg, tmp_path) -> None:
    cache = tmp_path / "cache"
    one = EmbeddingStore(tmp_path / "one")
    refs1 = write_semantic(synthetic_dataset, synthetic_split, sharded_cfg, one, cache_dir=cache)
    clear_encoders()
    with ThreadPoolExecutor(2) as pool:  # shards finishing in any order change nothing
        def threads(fn, calls):
            return list(pool.map(lambda kw: fn(**kw), calls))

        many = EmbeddingStore(tmp_path / "many")
        refs3 = write_semantic_sharded(synthetic_dataset, sharded_cfg, many, shards=3,
                                       mapper=threads, cache_dir=cache)
    for entity in ("items", "users"):
        a, b = one.resolve(refs1[entity]), many.resolve(refs3[entity])
        assert a.kind == b.kind == f"{entity}/semantic-tiny"
        ids1, v1 = one.read(a)
        ids3, v3 = many.read(b)
        assert np.array_equal(ids1, ids3) and same_bits(v1, v3)
        m1, m3 = one.manifest(a), many.manifest(b)
        assert m1.mean == m3.mean and m1.count == m3.count and m1.dim == m3.dim == 32
        assert len(m3.parts) == 3 and m3.producer.config["shards"] == 3
        for key in ("texts_sha256", "model", "mean_cosine_raw", "mean_cosine_centred", "tokens"):
            assert m1.producer.config[key] == m3.producer.config[key], key
        assert many.verify(b).ok
    assert many.manifest(refs3["users"]).index is not None
    assert [p.version for p in many.manifest(refs3["users"]).parents] == [refs3["items"].version]


def test_a_failed_shard_publishes_nothing(synthetic_dataset, sharded_cfg, tmp_path) -> None:
    store = EmbeddingStore(tmp_path / "store")

    def flaky(fn, calls):
        for kw in calls[:-1]:
            fn(**kw)
        raise StoreError("worker lost")  # the last shard never reports back

    with pytest.raises(StoreError, match="worker lost"):
        write_semantic_sharded(synthetic_dataset, sharded_cfg, store, shards=2, mapper=flaky,
                               cache_dir=tmp_path / "cache")
    assert store.list() == []
    assert not any(p.name.startswith(".tmp-") for p in Path(tmp_path / "store").rglob("*"))
