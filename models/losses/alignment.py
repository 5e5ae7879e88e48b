"""LLMEmb's RAT alignment: α · SoftContrastive_τ(teacher[ids], item_emb(ids)).

Reference: LLMEmb (Liu et al., AAAI 2025), recommendation-adaptation training
(METHODS.md §4.4). Inputs: teacher [N+1, D] (a trained ID table, row 0 unused; constant),
popularity [N+1] training counts (which ids to align when no batch is given); called with
the model (its `item_emb(ids) -> [n, D]` is the student) and optionally the batch, whose
target ids [B, T] (0 = none) are aligned instead, duplicates kept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from models.losses.contrastive import SoftContrastiveLoss

if TYPE_CHECKING:
    from models.srs.base import SequentialRecommender


class AlignmentLoss:
    """α · SoftContrastive_τ(teacher[ids], item_emb(ids)), a callable for train_srs.

    The teacher table is a plain tensor outside the model: the optimiser never sees it and
    it gets no gradient. The loss's τ is a fixed buffer (METHODS.md §4.4).
    """

    def __init__(self, teacher: torch.Tensor, popularity: np.ndarray, alpha: float,
                 n: int = 256, tau: float = 2.0, seed: int = 0) -> None:
        self.teacher = teacher.detach().float()  # [N+1, D], row 0 unused
        weights = torch.as_tensor(popularity, dtype=torch.float64).clone()  # [N+1]
        weights[0] = 0.0
        if weights.sum() <= 0:
            weights[1:] = 1.0
        self.weights = weights
        self.alpha, self.n = alpha, n
        self.loss = SoftContrastiveLoss(tau=tau, learnable_tau=False)
        self.gen = torch.Generator().manual_seed(seed)

    def sample(self) -> torch.Tensor:
        return torch.multinomial(self.weights, self.n, replacement=True, generator=self.gen)  # [n]

    def __call__(self, model: SequentialRecommender,
                 batch: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        if batch is not None:
            target = batch["target"]
            ids = target[target > 0].cpu()  # [M], duplicates kept
            if len(ids) > self.n:
                # The [M, M] soft targets grow quadratically (M ~ 5k on ML-100k batches):
                # align a random subset of the batch's targets instead.
                ids = ids[torch.randperm(len(ids), generator=self.gen)[: self.n]]
        else:
            ids = self.sample()
        device = next(model.parameters()).device
        adapted = model.item_emb(ids.to(device))  # [n, D], gradients reach the adapter
        teacher = self.teacher[ids].to(device)  # [n, D], constant
        return self.alpha * self.loss.compute_loss_from_embeddings(teacher, adapted)
