"""Pre-trained SASRec ID embeddings → `items/sasrec-id`: the collaborative teacher of
LLMEmb's RAT, E4SRec's input table and TSLRec's latent categories.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from embeddings_store import EmbeddingStore, ManifestInput, Producer, VersionRef
from pipeline import checkpoint
from pipeline.config import TrainConfig
from pipeline.data.dataset import Dataset
from pipeline.evaluate import pick
from pipeline.split import Split
from pipeline.train import build_model, train_srs

KIND = "items/sasrec-id"


def write_sasrec_id(dataset: Dataset, split: Split, cfg: TrainConfig, run_dir: Path,
                    store: EmbeddingStore, resume: bool = True) -> VersionRef:
    """Train SASRec on the training split (selected on validation) and store its item table.

    Rows are items 1..N in id order (the padding and [MASK] rows are not items).
    """
    result = train_srs(split, cfg, run_dir, resume=resume)
    model = build_model(cfg, split.n_items)
    model.load_state_dict(checkpoint.load(run_dir / "best.pt")["model"])
    table = model.item_emb.scoring_table().detach().float().numpy()[1:]  # [N, D]
    ids = np.arange(1, split.n_items + 1, dtype=np.int64)
    manifest = ManifestInput(
        dataset_fingerprint=dataset.fingerprint,
        producer=Producer(generator="sasrec-id", model_id=f"sasrec-{cfg.config_hash()}",
                          config=cfg.model_dump(mode="json")),
        metric="ip",
        metrics={
            "valid_full_ndcg@10": pick(result.valid_rows),
            "test_full_ndcg@10": pick(result.test_rows),
            "best_epoch": result.best_epoch,
            "train_seconds": result.train_seconds,
        },
    )
    return store.write(dataset.name, KIND, ids, table, manifest, expected_ids=ids)
