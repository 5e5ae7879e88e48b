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

    def seen_items(self, batch: dict[str, torch.Tensor],
                   among: torch.Tensor | None = None) -> torch.Tensor:
        """Cloze: every item of the row (masked ones included) is history to every masked
        position, as the whole history is to the evaluation's [MASK]; the position's own
        target stays in the softmax (softmax_ce, _negative_logits)."""
        target, inp = batch["target"], batch["input"]
        items = torch.where(target > 0, target, inp)  # [B, T] the unmasked row
        items = items.masked_fill(items > self.n_items, 0)  # a [MASK] id is never an item
        b, t = items.shape
        if among is not None:
            row = (items[..., None] == among[None, None, :]).any(1)  # [B, K]
        else:
            row = torch.zeros(b, self.n_items + 1, dtype=torch.bool, device=items.device)
            row.scatter_(1, items, True)  # [B, N+1]
            row[:, 0] = False
        return row[:, None, :].expand(b, t, row.shape[1])

    def forward(self, seq: torch.Tensor) -> torch.Tensor:  # [B, T] -> [B, D]
        mask = torch.full_like(seq[:, :1], self.item_emb.mask_id)
        window = torch.cat([seq, mask], dim=1)[:, -self.cfg.max_len:]  # [B, ≤max_len]
        return self.encode(window)[:, -1]
