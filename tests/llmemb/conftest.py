"""A tiny random LLaMA whose word-level vocabulary covers the synthetic items' texts."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


def tiny_tokenizer(texts: list[str]):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    pre = pre_tokenizers.Whitespace()
    words = sorted({w.lower() for s in texts for w, _ in pre.pre_tokenize_str(s)})
    vocab = {"[PAD]": 0, "[UNK]": 1, "</s>": 2}
    vocab.update({w: i + len(vocab) for i, w in enumerate(words)})
    tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tk.normalizer = normalizers.Lowercase()
    tk.pre_tokenizer = pre
    return PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="[PAD]", unk_token="[UNK]",
                                   eos_token="</s>")


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory, synthetic_dataset) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    from pipeline.prompts import PromptConfig, item_texts

    folder = tmp_path_factory.mktemp("llmemb-tiny-llama")
    tok = tiny_tokenizer(item_texts(synthetic_dataset.items, PromptConfig())[1])
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, intermediate_size=64,
                      pad_token_id=0, eos_token_id=2, bos_token_id=2)
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_spec(tiny_llama_dir: Path):
    from models.llm import LLMSpec

    return LLMSpec(source=str(tiny_llama_dir), dtype="fp32", device="cpu", batch_size=16)
