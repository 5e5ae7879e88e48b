"""A tiny random LLaMA whose vocabulary covers E4SRec's template, and builders around it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny_models import save_tiny_llama, word_tokenizer


@pytest.fixture(scope="session")
def e4s_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pipeline.methods.e4srec import PromptTemplate

    prompt = PromptTemplate()
    tok = word_tokenizer([prompt.prefix, prompt.suffix], cls=False)
    return save_tiny_llama(tmp_path_factory.mktemp("e4srec-tiny-llama"), tok)


@pytest.fixture(scope="session")
def e4s_spec(e4s_llama_dir: Path):
    from pipeline.llm import LLMSpec

    return LLMSpec(source=str(e4s_llama_dir), dtype="fp32", device="cpu")


@pytest.fixture(scope="session")
def e4s_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e4srec-llm-cache")


def random_table(n_items: int, dim: int = 8, seed: int = 0) -> torch.Tensor:
    """A tiny random ID table [N+1, dim] with a zero padding row."""
    gen = torch.Generator().manual_seed(seed)
    table = torch.randn(n_items + 1, dim, generator=gen) * 0.5
    table[0] = 0
    return table


@pytest.fixture
def make_model(e4s_spec, e4s_cache):
    """build(n_items, **model_cfg) -> a fresh E4SRec on the tiny LLaMA (seeded)."""
    from models.e4srec import E4SRecModelConfig
    from pipeline.llm import load_model
    from pipeline.methods.e4srec import E4SRecConfig
    from pipeline.methods.e4srec.run import build_e4srec

    def build(n_items: int = 30, seed: int = 0, **model_cfg):
        loaded = load_model(e4s_spec, cache_dir=e4s_cache)
        torch.manual_seed(seed)
        cfg = E4SRecConfig(model=E4SRecModelConfig(**model_cfg))
        return build_e4srec(loaded, random_table(n_items, seed=seed), cfg)
    return build
