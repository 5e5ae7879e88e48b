"""The umbrella flow runs TSLRec after sasrec-id on a tiny random LLaMA: the stored version
names its SASRec parent, a re-run is cached, and the standalone flow reuses the same task."""

from __future__ import annotations

import numpy as np
from tiny_models import save_tiny_llama, word_tokenizer

from embeddings_store import EmbeddingStore

SRS = {"epochs": 2, "model.dim": 16, "model.max_len": 20, "threads": 1}


def test_tslrec_flow_after_sasrec_id_caches_and_names_its_parent(prefect_harness, tmp_path,
                                                                 synthetic_dataset):
    from flows.embeddings import embeddings_flow
    from flows.tslrec import tslrec_flow
    from pipeline.methods.tslrec.data import LETTERS, TslrecPrompt

    p = TslrecPrompt()
    tok = word_tokenizer([*synthetic_dataset.items["title"].to_list(), p.prefix, p.suffix,
                          " ".join(LETTERS)], cls=False)
    llm = {"source": str(save_tiny_llama(tmp_path / "llama", tok)), "dtype": "fp32",
           "device": "cpu"}
    config = {"k": 4, "max_steps": 2, "batch_size": 8, "encode_batch_size": 64,
              "prompt": {"max_tokens": 40, "item_max_tokens": 8}}
    dirs = dict(data_dir=str(tmp_path / "data"), store_root=str(tmp_path / "store"),
                runs_dir=str(tmp_path / "runs"))
    kwargs = dict(dataset="synthetic", generators=["tslrec"], llm=llm,
                  configs={"sasrec-id": SRS, "tslrec": config}, **dirs)
    refs = embeddings_flow(**kwargs)
    assert set(refs) == {"items/sasrec-id", "items/tslrec"}

    store = EmbeddingStore(tmp_path / "store")
    ref = store.resolve(refs["items/tslrec"])
    ids, vectors = store.read(ref)
    assert np.array_equal(ids, np.arange(1, synthetic_dataset.n_items + 1)) and vectors.shape[1] == 32
    sasrec = store.resolve(refs["items/sasrec-id"])
    assert [(x.kind, x.version) for x in store.manifest(ref).parents] == [(sasrec.kind, sasrec.version)]
    run_dirs = list((tmp_path / "runs" / synthetic_dataset.name).glob("tslrec-*"))
    assert len(run_dirs) == 1 and (run_dirs[0] / "sft_last.pt").is_file()

    assert embeddings_flow(**kwargs) == refs  # cached: nothing retrains
    # The standalone flow on the store's current SASRec table hits the same cache entry.
    assert tslrec_flow(dataset="synthetic", llm=llm, config=config, **dirs) == refs["items/tslrec"]
    assert len(store.list()) == 2
