"""SASRec (Kang & McAuley, 2018): self-attention over the item sequence, next-item objective."""

from __future__ import annotations

from models.srs.transformer import TransformerRecommender


class SASRec(TransformerRecommender):
    objective = "next"
