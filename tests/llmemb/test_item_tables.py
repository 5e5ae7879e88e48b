"""FrozenAdapterEmbedding's rows (no off-by-one) and the two store consumption modes."""

from __future__ import annotations

import numpy as np
import torch

from models.item_emb import FrozenAdapterEmbedding, IdEmbedding
from pipeline.methods.llm_init.table import item_embedding_from_store, pca


def _emb(n: int = 5, p: int = 6, d: int = 4) -> FrozenAdapterEmbedding:
    torch.manual_seed(0)
    return FrozenAdapterEmbedding(torch.randn(n, p), d)


def test_pad_mask_and_last_item_rows():
    emb = _emb()
    n = emb.n_items
    out = emb(torch.tensor([[0, 1, n, n + 1]]))  # [1, 4, D]
    assert out.shape == (1, 4, 4)
    assert torch.equal(out[0, 0], torch.zeros(4))
    assert torch.allclose(out[0, 1], emb.adapter(emb.frozen[0]))
    # The last item is adapter(table[N-1]), not zero (the authors' np.insert(-1) bug).
    assert torch.allclose(out[0, 2], emb.adapter(emb.frozen[n - 1]))
    assert out[0, 2].abs().sum() > 0
    assert torch.equal(out[0, 3], emb.mask_vector)
    table = emb.scoring_table()
    assert table.shape == (n + 1, 4)
    assert torch.equal(table[0], torch.zeros(4))
    assert torch.allclose(table[1:], emb(torch.arange(1, n + 1)))


def test_adapter_is_two_linear_layers_and_the_table_never_trains():
    emb = _emb(p=6)
    assert [type(m).__name__ for m in emb.adapter] == ["Linear", "Linear"]
    assert emb.adapter[0].out_features == 3
    before = emb.frozen.clone()
    emb(torch.tensor([1, 2, 6])).sum().backward()
    assert not emb.frozen.requires_grad and emb.frozen.grad is None
    assert all(p is not emb.frozen for p in emb.parameters())
    assert emb.adapter[0].weight.grad is not None and emb.mask_vector.grad is not None
    torch.optim.SGD(emb.parameters(), lr=1.0).step()
    assert torch.equal(emb.frozen, before)
    assert "frozen" in emb.state_dict()


def test_pca_is_deterministic_and_ordered():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 8)) * np.arange(8, 0, -1)
    a, info = pca(x, 3)
    b, _ = pca(x.copy(), 3)
    assert a.shape == (50, 3) and a.dtype == np.float32 and np.array_equal(a, b)
    var = a.var(axis=0)
    assert var[0] >= var[1] >= var[2] and 0 < info["explained_variance"] <= 1


def test_store_modes_init_and_frozen_adapter():
    vectors = np.random.default_rng(1).normal(size=(20, 12)).astype(np.float32)
    init = item_embedding_from_store(vectors, "init", 4)
    assert isinstance(init, IdEmbedding) and init.table.weight.requires_grad
    assert torch.equal(init(torch.tensor([0]))[0], torch.zeros(4))
    assert init.scoring_table().shape == (21, 4)
    frozen = item_embedding_from_store(vectors, "frozen_adapter", 4, pca_dim=6)
    assert isinstance(frozen, FrozenAdapterEmbedding)
    assert frozen.frozen.shape == (20, 6) and not frozen.frozen.requires_grad
    assert torch.equal(frozen(torch.tensor([0]))[0], torch.zeros(4))
    assert frozen.scoring_table().shape == (21, 4)
