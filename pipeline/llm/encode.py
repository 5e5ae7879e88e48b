"""Texts → one vector each, from a loaded transformer, batched by length.

Sorting texts by token length before batching keeps padding (wasted compute) small;
vectors are written back in input order, so callers never see the sort.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from models.llm.pooling import pool
from pipeline.llm.loading import LoadedModel, load_model
from pipeline.llm.spec import LLMSpec


@dataclass(frozen=True)
class EncodeStats:
    """What one `encode` call did: real tokens exclude padding (for tokens/s and FLOP/s)."""

    n_texts: int
    n_tokens: int
    n_padded_tokens: int
    seconds: float


class TextEncoder:
    """Encodes texts with a (possibly LoRA-wrapped) model; works for causal LMs and encoders."""

    def __init__(self, loaded: LoadedModel, batch_size: int | None = None,
                 progress: bool = True) -> None:
        self.loaded = loaded
        self.batch_size = batch_size or loaded.spec.batch_size
        self.progress = progress

    @classmethod
    def from_spec(cls, spec: LLMSpec, cache_dir: Path | None = None,
                  progress: bool = True) -> TextEncoder:
        return cls(load_model(spec, cache_dir), progress=progress)

    @property
    def hidden_size(self) -> int:
        return self.loaded.hidden_size

    @property
    def model_id(self) -> str:
        return self.loaded.model_id

    @property
    def weights_hash(self) -> str:
        return self.loaded.weights_hash

    @property
    def pooling(self) -> str:
        return self.loaded.pooling

    def describe(self) -> dict:
        """The loaded model's manifest facts plus how it was run."""
        return {**self.loaded.describe(), "batch_size": self.batch_size}

    def _backbone(self) -> torch.nn.Module:
        """The bare transformer: skip peft's wrapper and a causal LM's vocabulary head
        (a [T, vocab] logits matrix per text would cost ~20 % more and is never used)."""
        model = self.loaded.model
        if hasattr(model, "get_base_model"):  # peft: LoRA layers stay injected in the base
            model = model.get_base_model()
        return getattr(model, "base_model", model)

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        """Token ids per text, truncated to max_length; an empty text becomes one pad token."""
        tok = self.loaded.tokenizer
        ids = tok(list(texts), truncation=True, max_length=self.loaded.max_length)["input_ids"]
        return [x if x else [tok.pad_token_id] for x in ids]

    def encode(self, texts: list[str]) -> np.ndarray:
        """[N, H] float32 pooled last-layer states, in the order of `texts`."""
        return self.encode_with_stats(texts)[0]

    def encode_with_stats(self, texts: list[str]) -> tuple[np.ndarray, EncodeStats]:
        start = time.perf_counter()
        tok, dev = self.loaded.tokenizer, self.loaded.device
        ids = self.tokenize(texts)
        lengths = np.array([len(x) for x in ids], dtype=np.int64)  # [N]
        order = np.argsort(-lengths, kind="stable")  # longest first: memory peaks early
        out = np.empty((len(ids), self.hidden_size), dtype=np.float32)  # [N, H]
        backbone = self._backbone()
        takes_positions = "position_ids" in inspect.signature(backbone.forward).parameters
        left = tok.padding_side == "left"
        padded = 0
        was_training = backbone.training
        backbone.eval()
        bar = tqdm(total=len(ids), desc=f"encode {self.loaded.spec.short_name}", unit="text",
                   disable=not self.progress, leave=False)
        with torch.inference_mode():
            for s in range(0, len(ids), self.batch_size):
                rows = order[s : s + self.batch_size]
                batch = tok.pad({"input_ids": [ids[i] for i in rows]}, padding=True,
                                return_tensors="pt")
                input_ids = batch["input_ids"].to(dev)  # [B, T]
                mask = batch["attention_mask"].to(dev)  # [B, T]
                kwargs = {}
                if left and takes_positions:
                    # Left padding shifts every position; restart them at the first real token
                    # so a padded text gets the states of the text alone. RoPE models do not
                    # care (only relative offsets count); absolute-position models (GPT-2) do.
                    kwargs["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0)
                hidden = backbone(input_ids=input_ids, attention_mask=mask, **kwargs)
                states = hidden.last_hidden_state  # [B, T, H]
                out[rows] = pool(states, mask, self.loaded.pooling).cpu().numpy()
                padded += int(mask.numel())
                bar.update(len(rows))
        bar.close()
        backbone.train(was_training)
        stats = EncodeStats(len(ids), int(lengths.sum()), padded, time.perf_counter() - start)
        return out, stats
