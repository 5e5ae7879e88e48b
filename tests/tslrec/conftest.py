"""TSLRec fixtures: a tiny random LLaMA whose vocabulary covers the prompts, and a store
holding a fake `items/sasrec-id` table with the synthetic items' latent categories in it."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_models import save_tiny_llama, word_tokenizer
from tslrec_helpers import write_sasrec_table


@pytest.fixture(scope="session")
def tiny_tslrec_dir(tmp_path_factory: pytest.TempPathFactory, synthetic_dataset) -> Path:
    from pipeline.methods.tslrec.data import LETTERS, TslrecPrompt

    p = TslrecPrompt()
    titles = synthetic_dataset.items["title"].to_list()
    ids = [p.id_template.format(item_id=i) for i in range(1, synthetic_dataset.n_items + 1)]
    texts = [*titles, " ".join(ids), p.prefix, p.suffix, " ".join(LETTERS)]
    tok = word_tokenizer(texts, cls=False)
    return save_tiny_llama(tmp_path_factory.mktemp("tslrec-tiny-llama"), tok)


@pytest.fixture(scope="session")
def tiny_spec(tiny_tslrec_dir: Path):
    from pipeline.llm import LLMSpec

    return LLMSpec(source=str(tiny_tslrec_dir), dtype="fp32", device="cpu")


@pytest.fixture
def store_with_sasrec(tmp_path, synthetic_dataset):
    from embeddings_store import EmbeddingStore

    store = EmbeddingStore(tmp_path / "store")
    return store, write_sasrec_table(store, synthetic_dataset)
