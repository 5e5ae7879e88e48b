"""Leave-one-out split by time and the fixed sampled-ranking negatives.

train = seq[:-2], valid = seq[-2], test = seq[-1]; validation input = train, test input =
train + valid. The 100 negatives per user are drawn once (seeded) from items the user
never touched and saved beside the prepared dataset, so every method and every training
seed is scored against the same candidates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import polars as pl

from embeddings_store.atomic import atomic_path
from pipeline.data.dataset import Dataset
from pipeline.errors import InputError


@dataclass(frozen=True)
class Split:
    train: list[np.ndarray]  # [U][len_u - 2] int64, element u-1 ↔ user u
    valid: np.ndarray  # [U] int64 item ids
    test: np.ndarray  # [U] int64 item ids
    n_items: int
    # The sampled-ranking negatives, drawn (or read) on first use only: a generator that
    # never evaluates (semantic, TSLRec) works on a catalogue too small for them.
    negatives_of: Callable[[], np.ndarray] = field(repr=False, compare=False)

    @cached_property
    def negatives(self) -> np.ndarray:
        """[U, n_neg] int64, never items of the user's full sequence."""
        return self.negatives_of()

    @property
    def n_users(self) -> int:
        return len(self.train)

    def inputs(self, stage: str) -> list[np.ndarray]:
        """What a model may read when predicting `stage`'s target."""
        if stage == "valid":
            return self.train
        if stage == "test":
            return [np.append(t, v) for t, v in zip(self.train, self.valid, strict=True)]
        raise ValueError(f"stage must be 'valid' or 'test', not {stage!r}")

    def targets(self, stage: str) -> np.ndarray:
        return {"valid": self.valid, "test": self.test}[stage]

    def train_item_counts(self) -> np.ndarray:
        """[N+1] training popularity per item id (index 0 unused)."""
        return np.bincount(np.concatenate(self.train), minlength=self.n_items + 1)

    def train_lengths(self) -> np.ndarray:
        return np.array([len(t) for t in self.train], dtype=np.int64)


def leave_one_out(dataset: Dataset, n_neg: int = 100, neg_seed: int = 0) -> Split:
    seqs = dataset.sequences
    short = sum(len(s) < 3 for s in seqs)
    if short:
        raise InputError(f"{dataset.path}: {short} users have < 3 interactions; re-prepare it")
    return Split(
        train=[s[:-2] for s in seqs],
        valid=np.array([s[-2] for s in seqs], dtype=np.int64),
        test=np.array([s[-1] for s in seqs], dtype=np.int64),
        n_items=dataset.n_items,
        negatives_of=lambda: load_or_sample_negatives(dataset, n_neg, neg_seed),
    )


def fewest_unseen(dataset: Dataset) -> tuple[int, int]:
    """(user id, number of items outside that user's whole sequence), for the user with the
    fewest: the most sampled negatives the dataset allows."""
    free = unseen_counts(dataset.sequences, dataset.n_items)
    u = int(np.argmin(free))
    return u + 1, free[u]


def unseen_counts(seqs: list[np.ndarray], n_items: int) -> list[int]:
    """Per user, the number of items outside their whole sequence."""
    return [n_items - len(np.unique(seq)) for seq in seqs]


def check_negatives(dataset: Dataset, n_negatives: Iterable[int]) -> None:
    """One line, before any training, when the catalogue is too small for the sampled
    protocol: every user needs `n` items outside their sequence."""
    wanted = max(n_negatives, default=0)
    if wanted == 0:
        return
    user, free = fewest_unseen(dataset)
    if free < wanted:
        raise InputError(negatives_message(dataset.name, user, free, wanted))


def negatives_message(name: str, user: int, free: int, n_neg: int) -> str:
    fix = (f"--set n_negatives={free} or fewer" if free > 0
           else "this catalogue is too small for a sampled protocol")
    return (f"dataset {name}: user {user} has only {free} items outside their history, fewer "
            f"than the {n_neg} sampled negatives of protocol s{n_neg}; {fix}")


def sample_negatives(
    seqs: list[np.ndarray], n_items: int, n_neg: int, seed: int, name: str = "dataset"
) -> np.ndarray:
    """[U, n_neg] distinct items outside each user's whole sequence (uniform, seeded)."""
    free = unseen_counts(seqs, n_items)
    if seqs and min(free) < n_neg:
        u = int(np.argmin(free))
        raise InputError(negatives_message(name, u + 1, free[u], n_neg))
    rng = np.random.default_rng(seed)
    out = np.empty((len(seqs), n_neg), dtype=np.int64)
    for u, seq in enumerate(seqs):
        picked = np.empty(0, dtype=np.int64)
        while len(picked) < n_neg:  # rejection sampling; cheap because free >> len(seq)
            cand = rng.integers(1, n_items + 1, size=2 * n_neg)
            cand = cand[~np.isin(cand, seq)]
            picked = np.concatenate([picked, cand])
            _, first = np.unique(picked, return_index=True)
            picked = picked[np.sort(first)]
        out[u] = picked[:n_neg]
    return out


def load_or_sample_negatives(dataset: Dataset, n_neg: int, seed: int) -> np.ndarray:
    path = dataset.path / "split" / f"negatives-n{n_neg}-seed{seed}.parquet"
    if path.is_file():
        table = pl.read_parquet(path)
        return np.stack(table["negatives"].to_numpy()).astype(np.int64)
    negs = sample_negatives(dataset.sequences, dataset.n_items, n_neg, seed, dataset.name)
    table = pl.DataFrame(
        {
            "user_id": np.arange(1, len(negs) + 1, dtype=np.int32),
            "negatives": pl.Series(negs.astype(np.int32)).reshape((len(negs), n_neg)),
        }
    )
    with atomic_path(path) as tmp:
        table.write_parquet(tmp)
    return negs
