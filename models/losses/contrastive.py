"""Contrastive losses between two aligned batches of vectors (LLMEmb's SCFT and RAT).

`SoftContrastiveLoss` is LLMEmb's CLIP-style loss with *soft* targets (METHODS.md §4.3):

    logits = X·Yᵀ / τ
    T      = softmax_row(τ · (X·Xᵀ + Y·Yᵀ) / 2)
    L      = mean_i ½ [CE(logits_i, T_i) + CE((logitsᵀ)_i, (Tᵀ)_i)]

with CE(p, q) = −Σ_j q_j log softmax(p)_j. The soft targets spread the mass of row i over
rows that are alike in *both* views, so duplicate items in a batch (RAT's target items)
are not pushed apart as false negatives. `InfoNCELoss` is the same with hard (identity)
targets: symmetric InfoNCE with in-batch negatives.

Both work in fp32 whatever the input dtype: un-normalised LLM states (4096-d in the paper)
overflow fp16 dot products (§4.6.5). They follow the sentence-transformers loss shape
(`compute_loss_from_embeddings`, `get_config_dict`) but take plain tensors, so nothing
here depends on sentence-transformers.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

MIN_TAU = 1e-2  # a learned τ is clamped here so it cannot cross zero and flip the logits


class SoftContrastiveLoss(nn.Module):
    """Symmetric soft-target contrastive loss between row-aligned X [B, D] and Y [B, D].

    Inputs: two float tensors of the same shape [B, D], B ≥ 1; row i of X and row i of Y
    are two views of the same entity. Gradients flow into both (detach one for a teacher).

    tau: temperature; `learnable_tau=True` makes it an nn.Parameter (LLMEmb's SCFT: init 3.0,
    trained; RAT: fixed 2.0). `normalize=True` L2-normalises X and Y first (cosine
    similarities); off by default, as in the paper, where the raw dot products dominate the
    soft targets so T ≈ identity. `soft_targets=False` gives plain symmetric InfoNCE.
    """

    def __init__(self, tau: float = 3.0, learnable_tau: bool = True, normalize: bool = False,
                 soft_targets: bool = True) -> None:
        super().__init__()
        if tau <= 0:
            raise ValueError(f"tau must be > 0, got {tau}")
        self.learnable_tau = learnable_tau
        self.normalize = normalize
        self.soft_targets = soft_targets
        t = torch.tensor(float(tau))
        if learnable_tau:
            self.tau = nn.Parameter(t)
        else:
            self.register_buffer("tau", t)

    @property
    def temperature(self) -> float:
        return float(self.tau.detach().clamp(min=MIN_TAU))

    def compute_loss_from_embeddings(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """x [B, D], y [B, D] -> scalar fp32 loss."""
        if x.shape != y.shape or x.dim() != 2:
            raise ValueError(f"expected two [B, D] tensors of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
        x, y = x.float(), y.float()
        if self.normalize:
            x, y = F.normalize(x, dim=-1), F.normalize(y, dim=-1)
        tau = self.tau.float().clamp(min=MIN_TAU)
        logits = x @ y.T / tau  # [B, B]
        if self.soft_targets:
            targets = torch.softmax(tau * (x @ x.T + y @ y.T) / 2, dim=-1)  # [B, B]
            # Probability targets; the transpose of T is the column view's target matrix.
            row = F.cross_entropy(logits, targets, reduction="none")  # [B]
            col = F.cross_entropy(logits.T, targets.T, reduction="none")  # [B]
        else:
            labels = torch.arange(x.shape[0], device=x.device)
            row = F.cross_entropy(logits, labels, reduction="none")
            col = F.cross_entropy(logits.T, labels, reduction="none")
        return ((row + col) / 2).mean()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.compute_loss_from_embeddings(x, y)

    def get_config_dict(self) -> dict[str, Any]:
        return {"tau": self.temperature, "learnable_tau": self.learnable_tau,
                "normalize": self.normalize, "soft_targets": self.soft_targets}


class InfoNCELoss(SoftContrastiveLoss):
    """Symmetric InfoNCE: the diagonal is the only positive (hard targets). Same inputs."""

    def __init__(self, tau: float = 3.0, learnable_tau: bool = True, normalize: bool = False) -> None:
        super().__init__(tau, learnable_tau, normalize, soft_targets=False)
