"""A tiny random LLaMA whose word-level vocabulary covers the synthetic items' texts."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_models import save_tiny_llama, word_tokenizer


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory, synthetic_dataset) -> Path:
    from pipeline.prompts import PromptConfig, item_texts

    tok = word_tokenizer(item_texts(synthetic_dataset.items, PromptConfig())[1], cls=False)
    return save_tiny_llama(tmp_path_factory.mktemp("llmemb-tiny-llama"), tok)


@pytest.fixture(scope="session")
def tiny_spec(tiny_llama_dir: Path):
    from pipeline.llm import LLMSpec

    return LLMSpec(source=str(tiny_llama_dir), dtype="fp32", device="cpu", batch_size=16)
