"""Versioned embedding store: Parquet vectors + FAISS index + manifest per version.

Knows nothing of models or flows (DESIGN.md, "Who may import whom"). Start with
:class:`EmbeddingStore`; everything else here is what its methods take or return.
"""

from __future__ import annotations

from embeddings_store.errors import StoreError
from embeddings_store.index import VectorIndex
from embeddings_store.index_choice import IndexChoice, IndexConfig, choose_index
from embeddings_store.kmeans import KMeansResult, kmeans
from embeddings_store.manage import GcReport, VerifyReport, VersionInfo
from embeddings_store.manifest import (
    SCHEMA_VERSION,
    IndexInfo,
    Manifest,
    ManifestInput,
    Parent,
    Producer,
)
from embeddings_store.parts import WriteOptions
from embeddings_store.reader import IdMap
from embeddings_store.refs import VersionRef, parse_ref
from embeddings_store.staged import StagedVersion
from embeddings_store.store import EmbeddingStore

__all__ = [
    "SCHEMA_VERSION",
    "EmbeddingStore",
    "GcReport",
    "IdMap",
    "IndexChoice",
    "IndexConfig",
    "IndexInfo",
    "KMeansResult",
    "Manifest",
    "ManifestInput",
    "Parent",
    "Producer",
    "StagedVersion",
    "StoreError",
    "VectorIndex",
    "VerifyReport",
    "VersionInfo",
    "VersionRef",
    "WriteOptions",
    "choose_index",
    "kmeans",
    "parse_ref",
]
