"""The semantic generator end to end: frozen LLM → item and user vectors → the store.

Writes `items/semantic-<model>` and `users/semantic-<model>` (the latter with a FAISS index
for LLM-ESR's neighbour search). User texts come from training histories only.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from embeddings_store import (
    EmbeddingStore,
    IndexConfig,
    ManifestInput,
    Parent,
    Producer,
    VersionRef,
)
from pipeline.data.dataset import Dataset
from pipeline.llm import LLMSpec, TextEncoder, load_model
from pipeline.methods.semantic.encode import semantic_item_embeddings, semantic_user_embeddings
from pipeline.prompts import PromptConfig
from pipeline.split import Split

# Caps sized for 2 CPU cores (encoding cost is linear in tokens, ~600 tokens/s for SmolLM2):
# user histories keep the most recent titles, each cut to 60 characters, in ≤ 300
# characters (~85 tokens); item values are cut to 120 characters. On Amazon-Scientific
# this cuts the tokens to encode from 1.8M to about 1.1M. The caps land in every manifest.
DEFAULT_PROMPT = PromptConfig(user_max_items=20, user_max_chars=300, user_title_chars=60,
                              max_value_chars=120, max_item_chars=500)


class SemanticConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    model: LLMSpec = LLMSpec()
    prompt: PromptConfig = DEFAULT_PROMPT
    users: bool = True


def write_semantic(dataset: Dataset, split: Split, cfg: SemanticConfig, store: EmbeddingStore,
                   cache_dir: Path | None = None) -> dict[str, VersionRef]:
    """Encode every item (and user) with the frozen model and write them as two versions."""
    encoder = TextEncoder(load_model(cfg.model, cache_dir=cache_dir))
    name = cfg.model.short_name
    refs: dict[str, VersionRef] = {}
    ids, vectors, info = semantic_item_embeddings(dataset, encoder, cfg.prompt)
    refs["items"] = store.write(dataset.name, f"items/semantic-{name}", ids, vectors,
                                semantic_manifest(dataset, encoder.describe(), info, []),
                                expected_ids=ids)
    if cfg.users:
        uids, uvectors, uinfo = semantic_user_embeddings(dataset, split, encoder, cfg.prompt)
        parent = Parent(kind=refs["items"].kind, version=refs["items"].version)
        refs["users"] = store.write(dataset.name, f"users/semantic-{name}", uids, uvectors,
                                    semantic_manifest(dataset, encoder.describe(), uinfo, [parent]),
                                    expected_ids=uids, index=IndexConfig())
    return refs


def semantic_manifest(dataset: Dataset, described: dict, info: dict, parents: list[Parent]) -> ManifestInput:
    """`described`: the encoder's `describe()` (model id, weights hash, how it was run)."""
    return ManifestInput(
        dataset_fingerprint=dataset.fingerprint,
        producer=Producer(
            generator="semantic", model_id=described["model_id"],
            model_file_hash=described["weights_sha256"],
            prompt_template=str(info["prompt_config"]),
            config={k: v for k, v in info.items() if k != "centre"},
        ),
        metric="cosine", normalized=True, centered=True, mean=info["centre"], parents=parents,
        metrics={k: info[k] for k in ("mean_cosine_raw", "mean_cosine_centred", "tokens",
                                      "seconds", "texts_per_s")},
    )
