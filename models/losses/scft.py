"""LLMEmb's SCFT loss as a sentence-transformers loss module.

Reference: LLMEmb (Liu et al., AAAI 2025), supervised contrastive fine-tuning
(METHODS.md §4.3). Inputs: the trainer's `sentence_features`, two columns of B tokenised
texts (two attribute-augmented views of the same B items); both are embedded in one
merged forward of 2B texts -> x [B, H], y [B, H], then a `SoftContrastiveLoss` (or
`InfoNCELoss`) is applied. The trainer optimises this module's parameters too, so a
learnable τ trains.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from models.losses.contrastive import SoftContrastiveLoss


class ScftLoss(nn.Module):
    """sentence-transformers-style wrapper: embeds both columns (one merged forward of 2B
    texts, as the paper's collator does) and applies a `SoftContrastiveLoss`. The trainer
    optimises this module's parameters too, so a learnable τ trains."""

    def __init__(self, model: nn.Module, loss: SoftContrastiveLoss) -> None:
        super().__init__()
        self.model = model
        self.loss = loss

    def forward(self, sentence_features: list[dict[str, Any]], labels: torch.Tensor | None) -> torch.Tensor:
        from sentence_transformers.base.losses.merged_forward import embed_columns

        x, y = embed_columns(self.model, sentence_features, separate_first=False)  # [B, H] each
        return self.loss.compute_loss_from_embeddings(x, y)

    def get_config_dict(self) -> dict[str, Any]:
        return self.loss.get_config_dict()
