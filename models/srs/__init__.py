"""Sequential recommender backbones sharing one contract (see base.SequentialRecommender)."""

from __future__ import annotations

from models.srs.base import SequentialRecommender, SRSConfig
from models.srs.bert4rec import BERT4Rec
from models.srs.gru4rec import GRU4Rec
from models.srs.sasrec import SASRec

BACKBONES: dict[str, type[SequentialRecommender]] = {
    "sasrec": SASRec,
    "gru4rec": GRU4Rec,
    "bert4rec": BERT4Rec,
}

__all__ = ["BACKBONES", "BERT4Rec", "GRU4Rec", "SASRec", "SRSConfig", "SequentialRecommender"]
