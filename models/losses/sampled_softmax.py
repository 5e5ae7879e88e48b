"""Losses over K negatives shared by the whole batch: cost O(M·K) instead of O(M·N), and no
`[·, N]` tensor is ever built, so million-item catalogues train on one machine.

- `sampled_softmax_ce`: softmax cross entropy over the target and the K negatives (Jean et
  al. 2015; Klenitskiy & Vasilev, RecSys 2023: with a few thousand uniform negatives SASRec
  matches the full softmax). `log_q` [K] is subtracted from the negatives' logits: the logQ
  correction of a non-uniform sampler (pipeline/negatives.py; zeros for uniform).
- `gbce`: gSASRec's generalised binary cross entropy (Petrov & Macdonald, RecSys 2023): the
  positive's term is raised to β = α(t(1 − 1/α) + 1/α), α = K/(N − 1), which calibrates a
  model trained on few negatives (t = 1 is the full-softmax-like limit, t = 0 plain BCE).

Inputs: h [M, D] hidden states of the target positions, pos [M] their target ids, pos_vec
[M, D] the targets' item vectors, neg [K] negative ids, neg_vec [K, D] their vectors,
seen [M, K] bool or None (a negative the user already had at that position, left out like
the full softmax's `mask_seen`). A negative equal to a row's target (an accidental hit) is
always left out of that row.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _negative_logits(h: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, neg_vec: torch.Tensor,
                     seen: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (logits [M, K], dropped [M, K] bool: accidental hits and seen negatives)."""
    drop = neg[None, :] == pos[:, None]  # [M, K] accidental hits
    if seen is not None:
        drop = drop | seen
    return h @ neg_vec.T, drop


def sampled_softmax_ce(h: torch.Tensor, pos: torch.Tensor, pos_vec: torch.Tensor,
                       neg: torch.Tensor, neg_vec: torch.Tensor,
                       seen: torch.Tensor | None = None,
                       log_q: torch.Tensor | None = None) -> torch.Tensor:
    pos_logit = (h * pos_vec).sum(-1, keepdim=True)  # [M, 1]
    neg_logit, drop = _negative_logits(h, pos, neg, neg_vec, seen)  # [M, K]
    if log_q is not None:
        neg_logit = neg_logit - log_q.to(neg_logit.dtype)[None, :]
    neg_logit = neg_logit.masked_fill(drop, -torch.inf)
    logits = torch.cat([pos_logit, neg_logit], dim=1)  # [M, 1 + K], the target in column 0
    return F.cross_entropy(logits, torch.zeros(len(pos), dtype=torch.long, device=h.device))


def gbce(h: torch.Tensor, pos: torch.Tensor, pos_vec: torch.Tensor, neg: torch.Tensor,
         neg_vec: torch.Tensor, n_items: int, t: float,
         seen: torch.Tensor | None = None) -> torch.Tensor:
    alpha = len(neg) / max(n_items - 1, 1)
    beta = alpha * (t * (1 - 1 / alpha) + 1 / alpha)
    pos_logit = (h * pos_vec).sum(-1)  # [M]
    neg_logit, drop = _negative_logits(h, pos, neg, neg_vec, seen)  # [M, K]
    pos_term = beta * F.softplus(-pos_logit.float())  # -log σ(s+)^β
    neg_term = F.softplus(neg_logit.float()).masked_fill(drop, 0).sum(1)  # -Σ log(1 - σ(s-))
    return (pos_term + neg_term).mean()


def seen_among(seq: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """seq [B, T] left-padded ids, neg [K] -> [B, T, K] bool: negative k occurs in
    seq[b, :t+1]. Memory B·T·K, independent of the catalogue size."""
    hits = (seq[..., None] == neg[None, None, :]).to(torch.int16)  # [B, T, K]
    return hits.cumsum(1, dtype=torch.int16) > 0
