"""Tiny random models and an offline word-level tokenizer, shared by the LLM test folders."""

from __future__ import annotations

from pathlib import Path

import torch


def word_tokenizer(texts: list[str], cls: bool = True):
    """A lower-cased whitespace WordLevel tokenizer whose vocabulary covers `texts`
    (with a [CLS] token for encoder tests when `cls`)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    pre = pre_tokenizers.Whitespace()
    words = sorted({w.lower() for s in texts for w, _ in pre.pre_tokenize_str(s)})
    vocab = {"[PAD]": 0, "[UNK]": 1, "</s>": 2, **({"[CLS]": 3} if cls else {})}
    vocab.update({w: i + len(vocab) for i, w in enumerate(words)})
    tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tk.normalizer = normalizers.Lowercase()
    tk.pre_tokenizer = pre
    extra = {"cls_token": "[CLS]"} if cls else {}
    return PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="[PAD]", unk_token="[UNK]",
                                   eos_token="</s>", **extra)


def save_tiny_llama(folder: Path, tok) -> Path:
    """A 2-layer, 32-wide random LLaMA (seeded) with `tok`, saved as a local HF folder."""
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, intermediate_size=64,
                      pad_token_id=0, eos_token_id=2, bos_token_id=2)
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
