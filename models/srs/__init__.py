"""Sequential recommender backbones sharing one contract (see base.SequentialRecommender)."""

from __future__ import annotations

from models.srs.base import SequentialRecommender, SRSConfig
from models.srs.bert4rec import BERT4Rec
from models.srs.gru4rec import GRU4Rec
from models.srs.registry import BACKBONES, register_backbone
from models.srs.sasrec import SASRec

# The built-in backbones, in the order the CLI lists them.
register_backbone("sasrec", SASRec)
register_backbone("gru4rec", GRU4Rec)
register_backbone("bert4rec", BERT4Rec)

__all__ = ["BACKBONES", "BERT4Rec", "GRU4Rec", "SASRec", "SRSConfig", "SequentialRecommender",
           "register_backbone"]
