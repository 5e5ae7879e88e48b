"""GRU4Rec (Hidasi et al., 2016) in its sequential form: a GRU over item embeddings."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from models.item_emb import ItemEmbedding
from models.srs.base import SequentialRecommender, SRSConfig


class GRU4Rec(SequentialRecommender):
    objective = "next"

    def __init__(self, cfg: SRSConfig, item_emb: ItemEmbedding) -> None:
        super().__init__(cfg, item_emb)
        self.drop = nn.Dropout(cfg.dropout)
        self.gru = nn.GRU(cfg.dim, cfg.dim, num_layers=cfg.layers, batch_first=True,
                          dropout=cfg.dropout if cfg.layers > 1 else 0.0)
        self.out = nn.Linear(cfg.dim, cfg.dim)

    def encode_vectors(self, x: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:  # -> [B, T, D]
        # The GRU runs on packed sequences, so the state never sees padding and the output
        # does not depend on how much left padding a batch carries.
        t = seq.shape[1]
        lengths = (seq > 0).sum(1)  # [B]
        ar = torch.arange(t, device=seq.device)[None]  # [1, T]
        shift = (t - lengths)[:, None]  # [B, 1] leading pads
        gather = (ar + shift).clamp(max=t - 1)[..., None].expand(-1, -1, x.shape[-1])
        right = x.gather(1, gather)  # [B, T, D] right-padded view
        packed = pack_padded_sequence(
            self.drop(right), lengths.clamp(min=1).cpu(),
            batch_first=True, enforce_sorted=False,
        )
        out, _ = self.gru(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=t)  # [B, T, D]
        back = (ar - shift).clamp(min=0)[..., None].expand(-1, -1, out.shape[-1])
        h = out.gather(1, back) * (seq > 0)[..., None]  # left-padded again
        return self.out(self.drop(h))
