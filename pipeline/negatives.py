"""The shared negatives of the sampled losses (`model.loss=sampled|gbce`), drawn by the
trainer from its checkpointed generator, so a resumed run and every rank of a distributed
run draw the same ones.

Samplers (`model.sampler`):
- `uniform`: K ids uniformly from 1..N (with replacement). The default: Klenitskiy &
  Vasilev (RecSys 2023) match the full softmax with uniform negatives.
- `popularity`: K ids in proportion to their training counts (hard negatives for head items).
- `mixed`: K uniform ids plus the batch's own targets (the in-batch negatives, which are
  popularity-distributed). In-batch negatives alone collapse (eSASRec), so they only ever
  come mixed with uniform ones.

`uniform` draws without replacement (a random permutation's first K) when the catalogue
holds at most 16·K items, so K ≥ N is exactly the full softmax; above that, duplicates are
rare (expected fraction K/2N < 3%) and drawing with replacement saves an O(N) permutation
per step.

Each draw comes with the logQ correction (Yi et al. 2019; Blanc & Rendle 2018) that the loss
subtracts from the negatives' logits: log(N · q_j), the log-ratio of id j's expected count
under the sampler to its count under uniform sampling. It is 0 for `uniform`, whose
uncorrected form matched the full softmax best (ML-100k validation, seed 0: NDCG@10 0.0936
with the absolute correction log(K/N), uncorrected better; README "Sampled softmax"), and it
makes the popularity-biased samplers unbiased relative to uniform.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

Sampler = Literal["uniform", "popularity", "mixed"]


class SharedNegatives:
    def __init__(self, n_items: int, k: int, sampler: Sampler,
                 train_counts: np.ndarray | None = None) -> None:
        """train_counts [N+1]: training occurrences per id (index 0 = padding, unused);
        needed by `popularity` and `mixed`."""
        self.n_items, self.k, self.sampler = n_items, k, sampler
        if sampler != "uniform":
            if train_counts is None:
                raise ValueError(f"sampler {sampler!r} needs the training item counts")
            counts = torch.as_tensor(np.asarray(train_counts[1:], dtype=np.float64)) + 1.0  # [N], smoothed
            self.prob = counts / counts.sum()  # [N], p(id i+1)

    def draw(self, gen: torch.Generator, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """targets [B, T] (0 = none) -> {"shared_negative": [K'] ids, "shared_log_q": [K']
        the logQ correction of each}."""
        n, k = self.n_items, self.k
        if self.sampler == "uniform":
            neg = _uniform(n, k, gen)
            return {"shared_negative": neg, "shared_log_q": torch.zeros(len(neg))}
        if self.sampler == "popularity":
            neg = torch.multinomial(self.prob, k, replacement=True, generator=gen) + 1
            log_q = torch.log(n * self.prob[neg - 1])  # K·p_j over uniform's K/N
        else:  # mixed: uniform + the batch's distinct targets
            in_batch = torch.unique(targets[targets > 0])
            neg = torch.cat([_uniform(n, k, gen), in_batch])
            m = int((targets > 0).sum())
            # expected count of id j: min(K, N)/N from the uniform part + P(j among the
            # batch's M targets), over the uniform part's alone
            uniform = min(k, n) / n
            log_q = torch.log((uniform + 1 - (1 - self.prob[neg - 1]) ** m) / uniform)
        return {"shared_negative": neg, "shared_log_q": log_q.float()}


def _uniform(n: int, k: int, gen: torch.Generator) -> torch.Tensor:
    """K ids from 1..N: all N when K ≥ N, without replacement up to N = 16·K, else with."""
    if k >= n:
        return torch.arange(1, n + 1)
    if n <= 16 * k:
        return torch.randperm(n, generator=gen)[:k] + 1
    return torch.randint(1, n + 1, (k,), generator=gen)
