"""The backbones' own objectives over the target positions of a batch.

- `softmax_ce`: full softmax cross entropy over the catalogue (SASRec/BERT4Rec/GRU4Rec
  "ce"; Kang & McAuley 2018 trained BCE, the full softmax follows Klenitskiy & Vasilev,
  RecSys 2023). logits [M, N+1] (column 0 = padding, never a class), pos [M] ids 1..N,
  seen [M, N+1] bool or None (items to leave out of each row's softmax).
- `sampled_bce`: one sampled negative per position (the papers' BCE). pos_logit [M],
  neg_logit [M]; each term averaged over positions, then summed (as the papers' code does).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def softmax_ce(logits: torch.Tensor, pos: torch.Tensor,
               seen: torch.Tensor | None = None) -> torch.Tensor:
    logits[:, 0] = -torch.inf  # padding is never a class
    if seen is not None:
        seen[torch.arange(len(pos), device=pos.device), pos] = False  # a repeat target stays in
        logits = logits.masked_fill(seen, -torch.inf)
    return F.cross_entropy(logits, pos)


def sampled_bce(pos_logit: torch.Tensor, neg_logit: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(
        pos_logit, torch.ones_like(pos_logit)
    ) + F.binary_cross_entropy_with_logits(neg_logit, torch.zeros_like(neg_logit))
