"""TSLRec's SFT loss: KL(target ‖ softmax(logits)) over a user's latent-category histogram.

Reference: TSLRec (METHODS.md §5.1). KL(p ‖ softmax(z)) averaged over rows equals the
soft-label cross entropy minus the targets' entropy, so it has the same gradients; unlike
cross entropy it is 0 for a perfect prediction, which makes held-out figures readable.

Inputs: logits [B, K] (any float dtype), target [B, K], rows non-negative summing to 1.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def kl_rows(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """[B, K] logits, [B, K] target distributions -> [B] KL(target_b ‖ softmax(logits_b)).

    Computed in fp32; 0·log 0 counts as 0, so categories a user never touched add nothing.
    """
    log_q = F.log_softmax(logits.float(), dim=-1)  # [B, K]
    p = target.float()
    return (torch.xlogy(p, p) - p * log_q).sum(dim=-1)


class CategoryKLLoss(nn.Module):
    """KL(target ‖ softmax(logits)) averaged over the batch.

    Inputs: logits [B, K] (any float dtype), target [B, K] with non-negative rows summing
    to 1 (a user's category histogram). Returns a scalar fp32 tensor.
    """

    def compute_loss_from_logits(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if logits.shape != target.shape or logits.dim() != 2:
            raise ValueError(f"expected two [B, K] tensors of one shape, got "
                             f"{tuple(logits.shape)} and {tuple(target.shape)}")
        return kl_rows(logits, target).mean()

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.compute_loss_from_logits(logits, target)

    def get_config_dict(self) -> dict[str, Any]:
        return {"loss": "kl(target||softmax(logits))", "reduction": "mean over rows"}
