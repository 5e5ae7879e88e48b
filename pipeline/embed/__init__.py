"""Stage-1 embedding generators: plain functions from a dataset and a model to vectors.

Writing to the store is the flows' job; nothing here imports the store or Prefect.
"""

from __future__ import annotations

from pipeline.embed.semantic import (
    centre_normalise,
    mean_pairwise_cosine,
    semantic_item_embeddings,
    semantic_user_embeddings,
)

__all__ = [
    "centre_normalise", "mean_pairwise_cosine", "semantic_item_embeddings",
    "semantic_user_embeddings",
]
