"""Stage-1 embedding generators: plain functions from a dataset and a model to vectors.

The semantic generator returns arrays and a JSON-ready info dict and leaves writing them
to its caller (a flow); nothing here imports Prefect. Importing this package stays cheap:
torch/transformers load only when a model is.
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
