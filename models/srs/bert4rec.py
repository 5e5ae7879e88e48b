"""BERT4Rec (Sun et al., 2019): bidirectional attention trained by cloze (masked items).

At inference a [MASK] is appended after the history (dropping the oldest item when the
window is full) and its hidden state scores the catalogue.
"""

from __future__ import annotations

import torch

from models.item_emb import ItemEmbedding
from models.srs.base import SequentialRecommender, SRSConfig, positions_from_end
from models.srs.transformer import Encoder


class BERT4Rec(SequentialRecommender):
    objective = "cloze"

    def __init__(self, cfg: SRSConfig, item_emb: ItemEmbedding) -> None:
        super().__init__(cfg, item_emb)
        self.encoder = Encoder(cfg.dim, cfg.layers, cfg.heads, cfg.dropout, cfg.max_len,
                               cfg.attn_dropout)

    def encode_vectors(self, x: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:  # -> [B, T, D]
        return self.encoder(x, positions_from_end(seq), causal=False)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:  # [B, T] -> [B, D]
        mask = torch.full_like(seq[:, :1], self.item_emb.mask_id)
        window = torch.cat([seq, mask], dim=1)[:, -self.cfg.max_len:]  # [B, ≤max_len]
        return self.encode(window)[:, -1]
