"""TextEncoder: pooling against manual computations, padding sides, order, batching."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from models.llm import pool
from pipeline.llm import TextEncoder

TEXTS = [
    "title is Star Wars; year is 1977; genres is Action, Adventure, Sci-Fi",
    "the lazy dog",
    "title is Sense and Sensibility",
    "a user chose these movies oldest first what does this person enjoy",
    "fox",
    "title is Return of the Jedi; year is 1983",
    "the quick brown fox jumps over the lazy dog",
]


@pytest.mark.parametrize("side", ["right", "left"])
def test_pool_matches_manual(side: str) -> None:
    torch.manual_seed(0)
    hidden = torch.randn(2, 4, 3)  # [B, T, H]
    lengths = [3, 2]
    mask = torch.zeros(2, 4, dtype=torch.long)
    for b, n in enumerate(lengths):
        if side == "right":
            mask[b, :n] = 1
        else:
            mask[b, 4 - n :] = 1
    for b, n in enumerate(lengths):
        real = hidden[b, :n] if side == "right" else hidden[b, 4 - n :]  # [n, H]
        torch.testing.assert_close(pool(hidden, mask, "mean")[b], real.mean(0))
        torch.testing.assert_close(pool(hidden, mask, "last")[b], real[-1])
        torch.testing.assert_close(pool(hidden, mask, "cls")[b], real[0])


def _encoder(loaded, pooling: str, side: str, batch_size: int) -> TextEncoder:
    """A view of the shared tiny model with its own pooling and padding side."""
    view = copy.copy(loaded)
    view.pooling = pooling
    view.tokenizer = copy.deepcopy(loaded.tokenizer)
    view.tokenizer.padding_side = side
    return TextEncoder(view, batch_size=batch_size, progress=False)


def _manual(loaded, text: str, pooling: str) -> np.ndarray:
    """One text alone (no padding at all) through the bare transformer, pooled by hand."""
    ids = loaded.tokenizer(text, return_tensors="pt")["input_ids"]  # [1, T]
    with torch.no_grad():
        states = loaded.model(input_ids=ids).last_hidden_state[0]  # [T, H]
    return (states.mean(0) if pooling == "mean" else states[-1]).numpy()


@pytest.mark.parametrize("pooling", ["mean", "last"])
@pytest.mark.parametrize("side", ["right", "left"])
def test_batched_equals_manual_unpadded(tiny_llama, pooling: str, side: str) -> None:
    enc = _encoder(tiny_llama, pooling, side, batch_size=3)
    out = enc.encode(TEXTS)  # [N, H]; batches mix lengths, so padding is exercised
    assert out.shape == (len(TEXTS), 32) and out.dtype == np.float32
    for i, text in enumerate(TEXTS):
        np.testing.assert_allclose(out[i], _manual(tiny_llama, text, pooling), atol=1e-5)


def test_batched_equals_unbatched_and_order_restored(tiny_llama) -> None:
    batched = _encoder(tiny_llama, "mean", "right", batch_size=4).encode(TEXTS)
    single = _encoder(tiny_llama, "mean", "right", batch_size=1).encode(TEXTS)
    np.testing.assert_allclose(batched, single, atol=1e-5)
    rev = _encoder(tiny_llama, "mean", "right", batch_size=4).encode(TEXTS[::-1])
    np.testing.assert_allclose(rev[::-1], batched, atol=1e-5)


def test_deterministic_and_stats(tiny_llama) -> None:
    enc = TextEncoder(tiny_llama, progress=False)
    a, stats = enc.encode_with_stats(TEXTS)
    b = enc.encode(TEXTS)
    assert np.array_equal(a, b)
    n_tokens = sum(len(x) for x in enc.tokenize(TEXTS))
    assert stats.n_texts == len(TEXTS) and stats.n_tokens == n_tokens
    assert stats.n_padded_tokens >= n_tokens and stats.seconds > 0


def test_truncation_and_empty_text(tiny_llama) -> None:
    view = copy.copy(tiny_llama)
    view.max_length = 3
    enc = TextEncoder(view, progress=False)
    assert max(len(x) for x in enc.tokenize(TEXTS)) == 3
    out = enc.encode(["", "fox"])
    assert np.isfinite(out).all()
