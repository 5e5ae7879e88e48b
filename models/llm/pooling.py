"""Pooling a transformer's hidden states into one vector per text."""

from __future__ import annotations

import torch


def pool(hidden: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """[B, T, H] hidden states, [B, T] 0/1 mask -> [B, H] float32.

    mean: mask-weighted average of the real tokens. last: the last real token, found from
    the mask, so it is right for left and right padding alike. cls: the first real token.
    """
    h = hidden.float()  # pool in fp32: bf16 sums over long texts lose digits
    m = mask.to(torch.bool)  # [B, T]
    if how == "mean":
        w = m.to(h.dtype).unsqueeze(-1)  # [B, T, 1]
        return (h * w).sum(1) / w.sum(1).clamp(min=1.0)
    pos = torch.arange(m.shape[1], device=m.device).expand_as(m)  # [B, T]
    if how == "last":
        idx = torch.where(m, pos, -1).max(dim=1).values  # [B]
    elif how == "cls":
        idx = torch.where(m, pos, m.shape[1]).min(dim=1).values  # [B]
    else:
        raise ValueError(f"pooling must be mean, last or cls, not {how!r}")
    idx = idx.clamp(0, m.shape[1] - 1)
    return h[torch.arange(h.shape[0], device=h.device), idx]  # [B, H]
