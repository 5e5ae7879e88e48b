"""Training batches from per-user training sequences.

All randomness comes from one torch.Generator whose state the trainer checkpoints, so a
resumed run draws exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import numpy as np
import torch

from models.sequences import pad_left

__all__ = ["cloze_batch", "next_item_batch", "pad_left", "sample_negatives"]


def _batch_len(seqs: list[np.ndarray], max_len: int) -> int:
    return max(1, min(max_len, max(len(s) for s in seqs)))


def sample_negatives(history: torch.Tensor, shape: torch.Size, n_items: int,
                     gen: torch.Generator, tries: int = 5) -> torch.Tensor:
    """Uniform item ids in 1..N of `shape` [B, T], redrawn when in the row's history [B, L]."""
    neg = torch.randint(1, n_items + 1, shape, generator=gen)
    for _ in range(tries):
        clash = (neg[..., None] == history[:, None, :]).any(-1)  # [B, T]
        if not clash.any():
            break
        neg[clash] = torch.randint(1, n_items + 1, (int(clash.sum()),), generator=gen)
    return neg


def next_item_batch(seqs: list[np.ndarray], max_len: int, n_items: int,
                    gen: torch.Generator, with_negatives: bool,
                    users: np.ndarray | None = None) -> dict[str, torch.Tensor]:
    """Every position predicts the item after it: input s[:-1], target s[1:].

    `users` [B] (1-based ids of the rows' users) is passed through as batch["user"], for
    auxiliary losses that need to know whose sequence a row is (LLM-ESR's distillation).
    """
    t = _batch_len([s[:-1] for s in seqs], max_len)
    batch = {"input": pad_left([s[:-1] for s in seqs], t),  # [B, T]
             "target": pad_left([s[1:] for s in seqs], t)}  # [B, T]
    if with_negatives:
        history = pad_left(seqs, max(len(s) for s in seqs))
        batch["negative"] = sample_negatives(history, batch["target"].shape, n_items, gen)
    return _with_users(batch, users)


def _with_users(batch: dict[str, torch.Tensor], users: np.ndarray | None) -> dict[str, torch.Tensor]:
    if users is not None:
        batch["user"] = torch.as_tensor(np.asarray(users), dtype=torch.int64)  # [B]
    return batch


def cloze_batch(seqs: list[np.ndarray], max_len: int, n_items: int, mask_prob: float,
                gen: torch.Generator, with_negatives: bool,
                last_only: torch.Tensor, users: np.ndarray | None = None) -> dict[str, torch.Tensor]:
    """BERT4Rec's masked-item objective.

    Rows with last_only[b] mask just their last item (the inference situation); the others
    mask each item with probability mask_prob (at least one), replaced by [MASK] 80% of the
    time, a random item 10%, kept 10%.
    """
    mask_id = n_items + 1
    seq = pad_left(seqs, _batch_len(seqs, max_len))  # [B, T]
    real = seq > 0
    masked = (torch.rand(seq.shape, generator=gen) < mask_prob) & real
    last = torch.zeros_like(masked)
    last[:, -1] = True
    none = ~masked.any(1)
    masked = torch.where((last_only | none)[:, None], last & real, masked)
    roll = torch.rand(seq.shape, generator=gen)
    randoms = torch.randint(1, n_items + 1, seq.shape, generator=gen)
    inp = torch.where(masked & (roll < 0.8), torch.full_like(seq, mask_id), seq)
    inp = torch.where(masked & (roll >= 0.8) & (roll < 0.9), randoms, inp)
    batch = {"input": inp, "target": torch.where(masked, seq, torch.zeros_like(seq))}
    if with_negatives:
        batch["negative"] = sample_negatives(seq, seq.shape, n_items, gen)
    return _with_users(batch, users)
