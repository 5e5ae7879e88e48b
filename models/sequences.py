"""Sequences as tensors: the one left-padding rule every batch, scorer and loss uses."""

from __future__ import annotations

import numpy as np
import torch


def pad_left(seqs: list[np.ndarray], length: int) -> torch.Tensor:
    """[B, length] int64, each sequence's last `length` items right-aligned, 0 = padding."""
    out = np.zeros((len(seqs), length), dtype=np.int64)
    for i, s in enumerate(seqs):
        s = s[-length:]
        if len(s):
            out[i, length - len(s):] = s
    return torch.from_numpy(out)
