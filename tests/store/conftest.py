"""Fixtures for the embeddings store tests: a store in tmp_path and a manifest input."""

from __future__ import annotations

from pathlib import Path

import pytest

from embeddings_store import EmbeddingStore, ManifestInput, Producer


@pytest.fixture
def store(tmp_path: Path) -> EmbeddingStore:
    return EmbeddingStore(tmp_path / "store")


@pytest.fixture
def minput() -> ManifestInput:
    return ManifestInput(
        dataset_fingerprint="fp-test",
        producer=Producer(generator="tests", model_id="none", config={"seed": 0}),
        metric="ip",
    )
