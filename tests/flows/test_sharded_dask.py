"""Sharded semantic generation on a 2-worker Dask cluster: the one-process run's bytes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_models import save_tiny_llama, word_tokenizer

from embeddings_store import EmbeddingStore

distributed = pytest.importorskip("distributed", reason="needs prefect-dask (pip install -e '.[dask]')")
pytest.importorskip("prefect_dask", reason="needs prefect-dask (pip install -e '.[dask]')")


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(np.uint32)


@pytest.mark.slow
def test_dask_sharded_semantic_is_bitwise_the_one_process_run(prefect_harness, tmp_path):
    from flows.embeddings import embeddings_flow
    from pipeline.data.config import resolve_dataset
    from pipeline.data.prepare import prepare_dataset
    from pipeline.llm import LLMSpec
    from pipeline.methods.semantic.sharded import entity_texts
    from pipeline.methods.semantic.write import SemanticConfig, write_semantic
    from pipeline.split import leave_one_out

    ds = prepare_dataset(resolve_dataset("synthetic"), tmp_path / "data")
    texts = entity_texts(ds, "items", SemanticConfig())[1]
    folder = save_tiny_llama(tmp_path / "tiny", word_tokenizer(texts, cls=False))
    spec = LLMSpec(source=str(folder), name="tiny", dtype="fp32", device="cpu", batch_size=16)
    cfg = SemanticConfig(model=spec, users=False)

    one = EmbeddingStore(tmp_path / "one")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # what each single-threaded Dask worker process uses
    try:
        ref1 = write_semantic(ds, leave_one_out(ds), cfg, one, cache_dir=tmp_path / "cache")["items"]
    finally:
        torch.set_num_threads(threads)

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client, \
            distributed.get_task_stream(client) as stream:
        refs = embeddings_flow(dataset="synthetic", generators=["semantic"],
                               configs={"semantic": cfg.model_dump(mode="json")},
                               llm=cfg.model.model_dump(mode="json"),
                               data_dir=str(tmp_path / "data"), store_root=str(tmp_path / "many"),
                               shards=2, task_runner="dask",
                               runner_address=cluster.scheduler_address)
        workers = set(client.scheduler_info()["workers"])
    ran_on = {t["worker"] for t in stream.data}
    assert len(stream.data) >= 4 and ran_on <= workers  # 2 encode + 2 centre tasks, on the cluster

    many = EmbeddingStore(tmp_path / "many")
    ref2 = many.resolve(refs["items/semantic-tiny"])
    ids1, v1 = one.read(ref1)
    ids2, v2 = many.read(ref2)
    assert np.array_equal(ids1, ids2) and np.array_equal(ids1, np.arange(1, ds.n_items + 1))
    assert np.array_equal(_bits(v1), _bits(v2))
    m1, m2 = one.manifest(ref1), many.manifest(ref2)
    assert m1.mean == m2.mean and len(m2.parts) == 2 and m2.producer.config["shards"] == 2
    assert many.verify(ref2).ok
