"""BERT4Rec (Sun et al., 2019): bidirectional attention trained by cloze (masked items).

At inference a [MASK] is appended after the history (dropping the oldest item when the
window is full) and its hidden state scores the catalogue.
"""

from __future__ import annotations

import torch

from models.srs.transformer import TransformerRecommender


class BERT4Rec(TransformerRecommender):
    objective = "cloze"

    def causal(self) -> bool:
        return False  # bidirectional, whatever the config says

    def forward(self, seq: torch.Tensor) -> torch.Tensor:  # [B, T] -> [B, D]
        mask = torch.full_like(seq[:, :1], self.item_emb.mask_id)
        window = torch.cat([seq, mask], dim=1)[:, -self.cfg.max_len:]  # [B, ≤max_len]
        return self.encode(window)[:, -1]
