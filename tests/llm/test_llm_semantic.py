"""The semantic generator: ids cover the catalogue, vectors centred and unit, users from train."""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np
import polars as pl
import pytest

from pipeline.errors import InputError
from pipeline.llm import TextEncoder
from pipeline.llm.encode import EncodeStats
from pipeline.methods.semantic.encode import (
    centre_normalise,
    mean_pairwise_cosine,
    semantic_item_embeddings,
    semantic_user_embeddings,
)
from pipeline.prompts import PromptConfig, user_texts


class RecordingEncoder:
    """Deterministic stand-in: a vector from each text's hash, plus a shared offset."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode_with_stats(self, texts: list[str]) -> tuple[np.ndarray, EncodeStats]:
        self.seen.extend(texts)
        rows = [np.random.default_rng(zlib.crc32(t.encode())).normal(size=8) for t in texts]
        n = len(texts)
        return np.stack(rows).astype(np.float32) + 5.0, EncodeStats(n, n, n, 0.01)

    def describe(self) -> dict:
        return {"model_id": "fake"}


def test_centre_normalise() -> None:
    x = np.random.default_rng(0).normal(size=(50, 6)).astype(np.float32) + 10.0
    assert mean_pairwise_cosine(x) > 0.9  # a shared offset: anisotropic
    v, mean = centre_normalise(x)
    np.testing.assert_allclose(mean, x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    assert abs(mean_pairwise_cosine(v)) < 0.1
    brute = (v @ v.T)[~np.eye(50, dtype=bool)].mean()
    assert mean_pairwise_cosine(v) == pytest.approx(float(brute), abs=1e-6)


def test_items_with_tiny_llama(synthetic_dataset, tiny_llama) -> None:
    enc = TextEncoder(tiny_llama, batch_size=64, progress=False)
    ids, vecs, info = semantic_item_embeddings(synthetic_dataset, enc, PromptConfig())
    n = synthetic_dataset.n_items
    assert ids.dtype == np.int64 and ids.tolist() == list(range(1, n + 1))
    assert vecs.shape == (n, 32) and vecs.dtype == np.float32 and np.isfinite(vecs).all()
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-4)
    assert len(info["centre"]) == 32 and info["normalised"] and info["dim"] == 32
    assert info["model"]["weights_sha256"] == tiny_llama.weights_hash
    assert info["mean_cosine_centred"] < info["mean_cosine_raw"]
    assert " is " in info["example_text"]


def test_users_see_training_items_only(synthetic_dataset, synthetic_split) -> None:
    enc = RecordingEncoder()
    cfg = PromptConfig(user_max_items=1000, user_max_chars=100_000)
    uids, vecs, info = semantic_user_embeddings(synthetic_dataset, synthetic_split, enc, cfg)
    assert uids.tolist() == list(range(1, synthetic_split.n_users + 1))
    assert vecs.shape == (synthetic_split.n_users, 8) and info["history"] == "train"
    assert enc.seen == user_texts(synthetic_dataset.items, synthetic_split.train, cfg)
    # the last user's text is built from its training items: same text as a split
    # whose valid/test items are gone entirely
    title = dict(zip(synthetic_dataset.items["item_id"].to_list(),
                     synthetic_dataset.items["title"].to_list(), strict=True))
    last_train = synthetic_split.train[-1]
    assert title[int(last_train[-1])] in enc.seen[-1]


def test_text_less_dataset_refused(synthetic_dataset) -> None:
    bare = dataclasses.replace(synthetic_dataset,
                               items=synthetic_dataset.items.select("item_id", "raw_id"))
    with pytest.raises(InputError, match="has no text attributes"):
        semantic_item_embeddings(bare, RecordingEncoder(), PromptConfig())
    cfg = PromptConfig(ids_as_text=True)
    ids, _, info = semantic_item_embeddings(bare, RecordingEncoder(), cfg)
    assert info["example_text"] == "item 1" and len(ids) == bare.n_items


def test_items_must_cover_catalogue(synthetic_dataset) -> None:
    holed = dataclasses.replace(synthetic_dataset,
                                items=synthetic_dataset.items.filter(pl.col("item_id") != 3))
    with pytest.raises(InputError, match=r"not exactly 1\.\."):
        semantic_item_embeddings(holed, RecordingEncoder(), PromptConfig())
