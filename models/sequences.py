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


def window_len(n: int, max_len: int) -> int:
    """The length a sequence of n items is padded to for inference: the smallest power of
    two ≥ n, at most max_len. It depends on the sequence alone, so a user's representation
    does not depend on which users share its batch, and short histories (most of them, on
    sparse data) do not pay for max_len positions."""
    return min(max_len, 1 << max(n - 1, 0).bit_length())


def window_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Batches of indices into `lengths` (sequence lengths) whose sequences share one
    window (`window_len` class), at most batch_size each: the shortest windows first, the
    original order kept within a window. Every index appears exactly once."""
    lengths = np.asarray(lengths, dtype=np.int64)
    classes = np.array([window_len(int(n), 1 << 62) for n in lengths], dtype=np.int64)
    batches = []
    for c in np.unique(classes):
        members = np.flatnonzero(classes == c)
        batches += [members[i:i + batch_size] for i in range(0, len(members), batch_size)]
    return batches
