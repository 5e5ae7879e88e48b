"""Every training loss, one module each (docstring: the paper, the inputs with shapes).

- contrastive: SoftContrastiveLoss, InfoNCELoss (LLMEmb SCFT/RAT)
- scft: ScftLoss (SCFT as a sentence-transformers loss)
- alignment: AlignmentLoss (LLMEmb RAT)
- category_kl: CategoryKLLoss, kl_rows (TSLRec SFT)
- rasd: RASDLoss (LLM-ESR self-distillation)
- next_item: softmax_ce, sampled_bce (the backbones' next-item / cloze objectives)
"""

from __future__ import annotations

from models.losses.alignment import AlignmentLoss
from models.losses.category_kl import CategoryKLLoss, kl_rows
from models.losses.contrastive import MIN_TAU, InfoNCELoss, SoftContrastiveLoss
from models.losses.next_item import sampled_bce, softmax_ce
from models.losses.rasd import RASDLoss
from models.losses.scft import ScftLoss

__all__ = ["MIN_TAU", "AlignmentLoss", "CategoryKLLoss", "InfoNCELoss", "RASDLoss", "ScftLoss",
           "SoftContrastiveLoss", "kl_rows", "sampled_bce", "softmax_ce"]
