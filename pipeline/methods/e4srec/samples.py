"""E4SRec's training samples: (a prefix of a user's training sequence -> the next item).

Only `Split.train` is read, so no validation or test item is ever a target or part of an
input. A sample is a (user index, position) pair; its history is the `max_history` items
before the position. Which samples an epoch sees, and in what order, depends only on the
seed and the epoch number, so a resumed run sees the same batches.
"""

from __future__ import annotations

import numpy as np
import torch

from pipeline.batches import pad_left


def sample_pool(train: list[np.ndarray], targets_per_user: int, min_history: int) -> np.ndarray:
    """[M, 2] int64 (user index, target position): the last `targets_per_user` positions of
    each training sequence with at least `min_history` items before them (METHODS.md §2.2)."""
    rows = []
    for u, seq in enumerate(train):
        first = max(min_history, len(seq) - targets_per_user)
        pos = np.arange(first, len(seq), dtype=np.int64)
        rows.append(np.stack([np.full_like(pos, u), pos], axis=1))
    return np.concatenate(rows) if rows else np.empty((0, 2), dtype=np.int64)


def epoch_order(n_pool: int, cap: int | None, seed: int, epoch: int) -> np.ndarray:
    """The pool rows epoch `epoch` trains on, in order: a seeded permutation, cut to `cap`."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(n_pool, generator=gen).numpy()
    return order[:cap] if cap is not None else order


def make_batch(train: list[np.ndarray], rows: np.ndarray, max_history: int) -> tuple[torch.Tensor, torch.Tensor]:
    """rows [B, 2] -> (history [B, L] left-padded with 0, L <= max_history; target [B])."""
    hist = [train[u][max(0, t - max_history):t] for u, t in rows.tolist()]
    length = max(1, max(len(h) for h in hist))
    target = torch.tensor([int(train[u][t]) for u, t in rows.tolist()], dtype=torch.long)
    return pad_left(hist, length), target


def steps_per_epoch(n_pool: int, cap: int | None, batch_size: int) -> int:
    n = min(n_pool, cap) if cap is not None else n_pool
    return -(-n // batch_size)
