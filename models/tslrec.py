"""TSLRec's user-level SFT output: a K-way preference distribution from a pooled LLM state.

The SFT target of a user is the normalised histogram of latent item categories over the
user's training sequence (METHODS.md §5.1). Two ways to turn the LLM's pooled last-token
state h [B, H] into K logits (both are our reconstruction; the paper's output form is not
public, §5.2):

- `CategoryHead`: a new linear head (LayerNorm without affine → Linear(H, K)), the form
  the LLMEmb repository's `cls_head` hints at. Its bias can start at the log of a prior so
  the untrained head already predicts that prior.
- `VerbalizerHead`: no new parameters; the logits are the LM head's scores of K label
  tokens (" A", " B", …) at the last position, i.e. the first token the LLM would
  generate, restricted to the K category names. The simple "generate it as text" variant.

The loss, `CategoryKLLoss`, is in models/losses/category_kl.py.
"""

from __future__ import annotations

import torch
from torch import nn


class CategoryHead(nn.Module):
    """[B, H] pooled states -> [B, K] logits.

    The LayerNorm (no affine parameters) puts every model's last-token states on one scale,
    so one learning rate suits them; last-token states of LLaMA-like models have a few
    huge coordinates. `prior` [K] (probabilities) sets the bias to log(prior) and the
    weights to zero, so the untrained head predicts the prior exactly.
    """

    def __init__(self, hidden: int, k: int, prior: torch.Tensor | None = None,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden, elementwise_affine=False)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(hidden, k)
        if prior is not None:
            if prior.shape != (k,):
                raise ValueError(f"prior must have shape ({k},), got {tuple(prior.shape)}")
            with torch.no_grad():
                self.linear.weight.zero_()
                self.linear.bias.copy_(prior.float().clamp(min=1e-8).log())

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(self.norm(h.float())))  # [B, K]


class VerbalizerHead(nn.Module):
    """[B, H] final-norm states -> [B, K] LM-head scores of the K label tokens (frozen).

    `label_rows` [K, H] are the LM head's weight rows of the label tokens (and `label_bias`
    [K] its bias, if it has one). Nothing here trains: only LoRA moves these logits.
    """

    def __init__(self, label_rows: torch.Tensor, label_bias: torch.Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("rows", label_rows.detach().float().clone())  # [K, H]
        bias = torch.zeros(len(label_rows)) if label_bias is None else label_bias.detach().float()
        self.register_buffer("bias", bias.clone())  # [K]

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h.float() @ self.rows.T + self.bias  # [B, K]
