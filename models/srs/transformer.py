"""A small pre-LayerNorm transformer encoder shared by SASRec and BERT4Rec."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.item_emb import ItemEmbedding
from models.srs.base import SequentialRecommender, SRSConfig, positions_from_end


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float, attn_dropout: float) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        # No dropout inside the 4×-wide FFN: on CPU, drawing that mask cost more than
        # the matmuls around it, with no measurable gain (residual dropout stays).
        self.ffn = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.attn_dropout = attn_dropout
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [B, T, D]; mask [B, 1, T, T] bool, True = may attend."""
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, d // self.heads).unbind(2)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))  # [B, H, T, D/H]
        a = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.attn_dropout if self.training else 0.0
        )
        x = x + self.drop(self.proj(a.transpose(1, 2).reshape(b, t, d)))
        return x + self.drop(self.ffn(self.ln2(x)))


class Encoder(nn.Module):
    """Item + position embeddings → blocks → final LayerNorm, padding kept at zero."""

    def __init__(self, dim: int, layers: int, heads: int, dropout: float, max_len: int,
                 attn_dropout: float = 0.0) -> None:
        super().__init__()
        self.pos = nn.Embedding(max_len + 2, dim, padding_idx=0)
        # Same scale as the item tables (std dim^-0.5): a unit-variance position table
        # would drown the item signal at the input.
        nn.init.normal_(self.pos.weight, std=dim**-0.5)
        with torch.no_grad():
            self.pos.weight[0].zero_()
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(dim, heads, dropout, attn_dropout) for _ in range(layers))
        self.ln = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, positions: torch.Tensor, causal: bool) -> torch.Tensor:
        """x [B, T, D] item vectors; positions [B, T] (0 = padding) -> [B, T, D]."""
        real = positions > 0  # [B, T]
        t = x.shape[1]
        mask = real[:, None, None, :]  # keys: only real items
        if causal:
            mask = mask & torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        # Every query may see itself, so rows of padding never softmax over nothing (NaN).
        mask = mask | torch.eye(t, dtype=torch.bool, device=x.device)
        h = self.drop(x + self.pos(positions)) * real[..., None]
        for block in self.blocks:
            h = block(h, mask) * real[..., None]
        return self.ln(h)


class TransformerRecommender(SequentialRecommender):
    """Self-attention over the item vectors, positions counted back from the last item.

    SASRec and BERT4Rec are this model with different objectives (next item, cloze) and
    attention (causal by config, bidirectional).
    """

    def __init__(self, cfg: SRSConfig, item_emb: ItemEmbedding) -> None:
        super().__init__(cfg, item_emb)
        self.encoder = Encoder(cfg.dim, cfg.layers, cfg.heads, cfg.dropout, cfg.max_len,
                               cfg.attn_dropout)

    def causal(self) -> bool:
        return self.cfg.causal

    def encode_vectors(self, x: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:  # -> [B, T, D]
        return self.encoder(x, positions_from_end(seq), self.causal())
