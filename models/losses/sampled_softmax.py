"""Sampled softmax over K negatives shared by the whole batch (Klenitskiy & Vasilev, RecSys
2023: with a few thousand uniform negatives SASRec matches the full softmax; Jean et al. 2015
for the estimator). Cost O(M·K) instead of O(M·N): no `[·, N]` tensor is ever built, so
million-item catalogues train on one machine.

Inputs: h [M, D] hidden states of the target positions, pos [M] their target ids, pos_vec
[M, D] the targets' item vectors, neg [K] negative ids drawn uniformly from 1..N, neg_vec
[K, D] their vectors, seen [M, K] bool or None (a negative the user already had at that
position, left out like the full softmax's `mask_seen`). A negative equal to a row's target
(an accidental hit) is always left out of that row. Uniform negatives need no logQ
correction (it is the same constant for every candidate).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sampled_softmax_ce(h: torch.Tensor, pos: torch.Tensor, pos_vec: torch.Tensor,
                       neg: torch.Tensor, neg_vec: torch.Tensor,
                       seen: torch.Tensor | None = None) -> torch.Tensor:
    pos_logit = (h * pos_vec).sum(-1, keepdim=True)  # [M, 1]
    neg_logit = h @ neg_vec.T  # [M, K]
    drop = neg[None, :] == pos[:, None]  # [M, K] accidental hits
    if seen is not None:
        drop = drop | seen
    neg_logit = neg_logit.masked_fill(drop, -torch.inf)
    logits = torch.cat([pos_logit, neg_logit], dim=1)  # [M, 1 + K], the target in column 0
    return F.cross_entropy(logits, torch.zeros(len(pos), dtype=torch.long, device=h.device))


def seen_among(seq: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """seq [B, T] left-padded ids, neg [K] -> [B, T, K] bool: negative k occurs in
    seq[b, :t+1]. Memory B·T·K, independent of the catalogue size."""
    hits = (seq[..., None] == neg[None, None, :]).to(torch.int16)  # [B, T, K]
    return hits.cumsum(1, dtype=torch.int16) > 0
