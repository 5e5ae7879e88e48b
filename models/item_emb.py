"""Where item vectors come from, behind one interface.

Row layout of every table: row 0 = padding (zero), rows 1..N = items, row N+1 = [MASK]
(BERT4Rec's cloze token; zero and unused elsewhere). Later sources (a frozen LLM table, a
frozen table + adapter, a dual view) implement the same interface, so the backbones never
change when the item representation does.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class ItemEmbedding(nn.Module, ABC):
    """Maps item ids to vectors of size `dim` for the encoder input and for scoring."""

    def __init__(self, n_items: int, dim: int) -> None:
        super().__init__()
        self.n_items = n_items
        self.dim = dim

    @property
    def mask_id(self) -> int:
        return self.n_items + 1

    @abstractmethod
    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids [*] int64 in 0..N+1 -> [*, dim]."""

    @abstractmethod
    def scoring_table(self) -> torch.Tensor:
        """[N+1, dim] vectors of ids 0..N that a user representation is scored against."""

    @contextmanager
    def reuse(self) -> Iterator[None]:
        """Inside, a table computed from parameters (an adapter's output) is computed once
        and shared by every lookup and scoring_table() call: one training step's worth.
        A plain table has nothing to share."""
        yield


class IdEmbedding(ItemEmbedding):
    """A trainable ID table (the classic SRS item embedding), optionally initialised."""

    def __init__(self, n_items: int, dim: int, init: torch.Tensor | None = None,
                 sparse: bool = False) -> None:
        """sparse: row-sparse gradients, for losses that only look rows up (the sampled
        ones); `scoring_table` is then for scoring without gradient only."""
        super().__init__(n_items, dim)
        self.table = nn.Embedding(n_items + 2, dim, padding_idx=0, sparse=sparse)
        nn.init.normal_(self.table.weight, std=dim**-0.5)
        with torch.no_grad():
            if init is not None:
                if init.shape != (n_items + 1, dim):
                    raise ValueError(f"init table must be [{n_items + 1}, {dim}], got {tuple(init.shape)}")
                self.table.weight[: n_items + 1] = init
            self.table.weight[0].zero_()

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.table(ids)

    def scoring_table(self) -> torch.Tensor:
        return self.table.weight[: self.n_items + 1]


class FrozenAdapterEmbedding(ItemEmbedding):
    """A frozen table of item vectors (an LLM's, PCA'd) seen through a trainable adapter.

    LLMEmb's RAT (METHODS.md §4.4): Linear(P → P/2) then Linear(P/2 → D), no activation in
    between, so the adapter is a low-rank linear map whose factorisation only eases
    optimisation. The table is a buffer: it is saved with the model but never trained and
    never reaches the optimiser. Row layout as everywhere: id 0 = padding (exactly zero),
    id i in 1..N = adapter(table[i-1]), id N+1 = a learned [MASK] vector (BERT4Rec). The
    authors' `np.insert(emb, -1, zeros)` put the zero row *before* the last item (§4.6.1);
    here the table holds items only and the pad/mask rows are added around the adapter.
    """

    def __init__(self, table: torch.Tensor, dim: int, hidden: int | None = None) -> None:
        n_items, in_dim = table.shape  # [N, P], row i-1 ↔ item i
        super().__init__(n_items, dim)
        self.register_buffer("frozen", table.detach().float().clone())  # [N, P]
        self.adapter = nn.Sequential(nn.Linear(in_dim, hidden or max(in_dim // 2, 1)),
                                     nn.Linear(hidden or max(in_dim // 2, 1), dim))
        self.mask_vector = nn.Parameter(torch.randn(dim) * dim**-0.5)  # [D]
        self._reused: torch.Tensor | None = None  # item_vectors() inside `reuse()`

    def item_vectors(self) -> torch.Tensor:
        """[N, D] adapted vectors of items 1..N (row i-1 ↔ item i).

        The two layers are composed first (W = W2·W1 [D, P], b = W2·b1 + b2) and the table
        goes through one [N, P] × [P, D] product: the same linear map as adapter(frozen),
        at N·P·D multiply-adds instead of N·(P/2)·(P + D): a fifth of them for P = 576, D = 64.
        """
        if self._reused is not None:
            return self._reused
        first, second = self.adapter
        weight = second.weight @ first.weight  # [D, P]
        bias = second.weight @ first.bias + second.bias  # [D]
        return torch.addmm(bias, self.frozen, weight.T)  # [N, D]

    @contextmanager
    def reuse(self) -> Iterator[None]:
        """Adapt the table once for everything inside (a training step's input lookups and
        its scoring table both need it), instead of once per call."""
        if self._reused is not None:  # already inside an outer reuse()
            yield
            return
        self._reused = self.item_vectors()
        try:
            yield
        finally:
            self._reused = None

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        # Adapting the whole table once is cheaper than adapting B·T gathered rows whenever
        # B·T ≥ N, and the CE loss's scoring table needs it anyway.
        items = self.item_vectors()  # [N, D]
        full = torch.cat([items.new_zeros(1, self.dim), items, self.mask_vector[None].to(items.dtype)])
        return full[ids]  # [*, D]

    def scoring_table(self) -> torch.Tensor:
        items = self.item_vectors()  # [N, D]
        return torch.cat([items.new_zeros(1, self.dim), items])  # [N+1, D]
