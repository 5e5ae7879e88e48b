"""A tiny random LLaMA (and BERT) with an offline word-level tokenizer, built once per session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tiny_models import save_tiny_llama, word_tokenizer

SENTENCES = [
    "title is Star Wars; year is 1977; genres is Action, Adventure, Sci-Fi",
    "title is Return of the Jedi; year is 1983; genres is Action, Sci-Fi",
    "title is Sense and Sensibility; year is 1995; genres is Drama, Romance",
    "a user chose these movies oldest first what does this person enjoy",
    "the quick brown fox jumps over the lazy dog",
]


def _tokenizer():
    return word_tokenizer(SENTENCES)


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"), _tokenizer())


@pytest.fixture(scope="session")
def tiny_st_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sentence-transformers folder (modules.json, CLS pooling) around a tiny BERT."""
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-st")
    tok = _tokenizer()
    cfg = BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1,
                     num_attention_heads=2, intermediate_size=32, pad_token_id=0)
    torch.manual_seed(0)
    BertModel(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 12}))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 16, "pooling_mode_cls_token": True,
                    "pooling_mode_mean_tokens": False}))
    return folder


@pytest.fixture(scope="session")
def tiny_llama(tiny_llama_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """The tiny LLaMA loaded for encoding, fp32 on CPU (exact comparisons)."""
    from pipeline.llm import LLMSpec, load_model

    spec = LLMSpec(source=str(tiny_llama_dir), dtype="fp32", device="cpu", batch_size=3)
    return load_model(spec, cache_dir=tmp_path_factory.mktemp("llm-cache"))
