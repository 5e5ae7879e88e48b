"""SASRec (Kang & McAuley, 2018): self-attention over the item sequence, next-item objective."""

from __future__ import annotations

import torch

from models.item_emb import ItemEmbedding
from models.srs.base import SequentialRecommender, SRSConfig, positions_from_end
from models.srs.transformer import Encoder


class SASRec(SequentialRecommender):
    objective = "next"

    def __init__(self, cfg: SRSConfig, item_emb: ItemEmbedding) -> None:
        super().__init__(cfg, item_emb)
        self.encoder = Encoder(cfg.dim, cfg.layers, cfg.heads, cfg.dropout, cfg.max_len,
                               cfg.attn_dropout)

    def encode_vectors(self, x: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:  # -> [B, T, D]
        return self.encoder(x, positions_from_end(seq), self.cfg.causal)
