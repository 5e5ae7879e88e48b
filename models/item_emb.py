"""Where item vectors come from, behind one interface.

Row layout of every table: row 0 = padding (zero), rows 1..N = items, row N+1 = [MASK]
(BERT4Rec's cloze token; zero and unused elsewhere). Later sources (a frozen LLM table, a
frozen table + adapter, a dual view) implement the same interface, so the backbones never
change when the item representation does.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

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


class IdEmbedding(ItemEmbedding):
    """A trainable ID table (the classic SRS item embedding), optionally initialised."""

    def __init__(self, n_items: int, dim: int, init: torch.Tensor | None = None) -> None:
        super().__init__(n_items, dim)
        self.table = nn.Embedding(n_items + 2, dim, padding_idx=0)
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
