"""TSLRec on an existing SASRec table: the `tslrec` generator alone, on the store's current
(or a named) `items/sasrec-id` version. The umbrella `embeddings` flow runs the same task
after its own `sasrec-id`."""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from embeddings_store import EmbeddingStore
from flows.common import prepare
from flows.embeddings import generate
from pipeline.data.dataset import Dataset
from pipeline.methods.tslrec.write import SASREC_KIND
from pipeline.runs import generator_report


@flow(name="tslrec")
def tslrec_flow(dataset: str = "movielens-100k", llm: dict | None = None,
                config: dict | None = None, sasrec_ref: str = SASREC_KIND, data_dir: str = "data",
                store_root: str = "store", runs_dir: str = "runs", refresh: bool = False) -> str:
    """TSLRec on `sasrec_ref` (default the current `items/sasrec-id`); returns the
    `items/tslrec` version."""
    path = prepare(dataset, data_dir)
    name = Dataset.load(Path(path)).name
    exact = str(EmbeddingStore(store_root).resolve(sasrec_ref, dataset=name))
    refs = generate.with_options(refresh_cache=refresh)(
        "tslrec", path, config or {}, llm, {SASREC_KIND: exact}, store_root, runs_dir)
    create_markdown_artifact(generator_report("tslrec", store_root, refs), key="tslrec",
                             description="TSLRec held-out preference reconstruction")
    return refs["items/tslrec"]
