"""The contract every backbone follows.

- `encode(seq) -> [B, T, D]`: a hidden state per position of a left-padded id sequence.
- `forward(seq) -> [B, D]`: the user representation (the last position).
- `score_all(user) -> [B, N+1]`: one score per item id (column 0 is padding).
- `loss(batch) -> scalar`: the training objective on a batch from pipeline.batches.

Sequences are left-padded with 0, so the most recent item is always at position T-1.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from torch import nn

from models.item_emb import ItemEmbedding
from models.losses.next_item import sampled_bce, softmax_ce
from models.losses.sampled_softmax import gbce, sampled_softmax_ce, seen_among
from models.srs.registry import check_backbone

SAMPLED_LOSSES = ("sampled", "gbce")  # the losses over shared negatives
# model.loss=auto: the full softmax up to this many items, sampled above (bench/scale.py).
AUTO_SAMPLED_ABOVE = 100_000


class SRSConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    backbone: Annotated[str, AfterValidator(check_backbone)] = "sasrec"  # models/srs/registry.py
    dim: int = Field(64, ge=1)
    layers: int = Field(2, ge=1)
    heads: int = Field(1, ge=1)
    dropout: float = Field(0.2, ge=0, lt=1)
    # Dropout on attention weights; costly on CPU (a [B, H, T, T] mask per layer).
    attn_dropout: float = Field(0.0, ge=0, lt=1)
    # Positions a sequence keeps (its most recent items). Capped: attention is [B, H, T, T],
    # so 8192 positions already need 256 MiB per sequence and head in fp32.
    max_len: int = Field(200, ge=2, le=8192)
    # SASRec: causal attention (True, the original model). The LLM-ESR/LLMEmb code runs it
    # non-causally (METHODS.md §1.3); False reproduces that.
    causal: bool = True
    # "ce": full softmax over the catalogue; "bce": one uniform negative per position
    # (the papers' choice); "sampled": softmax over `negatives` negatives shared by the
    # batch, "gbce": gSASRec's calibrated BCE over them (models/losses/sampled_softmax.py),
    # for catalogues too large for "ce"; "auto": "ce" up to AUTO_SAMPLED_ABOVE items, else
    # "sampled" (resolved against the dataset before training: resolve_loss).
    loss: Literal["ce", "bce", "sampled", "gbce", "auto"] = "ce"
    # The sampled losses' settings (pipeline/negatives.py); ignored by the others.
    negatives: int = Field(3000, ge=1)
    sampler: Literal["uniform", "popularity", "mixed"] = "uniform"
    gbce_t: float = Field(0.75, ge=0, le=1)  # gBCE calibration t
    mask_prob: float = Field(0.2, gt=0, lt=1)  # BERT4Rec cloze masking ratio
    # BERT4Rec: each user's last-item-masked copy (the inference situation) ends at a random
    # point of its history, redrawn every epoch, instead of always at its end: every prefix
    # is a next-item example, as SASRec's every position is (prefix augmentation, Tan et al.
    # 2016). Chosen for configs/srs/bert4rec.yaml on validation (figures there).
    cloze_prefixes: bool = False
    # "ce" only: leave items the user already had (up to each position) out of that
    # position's softmax, as the masked full-ranking evaluation does. For datasets without
    # repeat consumption; the target itself always stays in.
    mask_seen: bool = False

    @model_validator(mode="after")
    def _heads_divide_dim(self) -> SRSConfig:
        if self.dim % self.heads:
            raise ValueError(f"model.heads={self.heads} does not divide model.dim={self.dim} "
                             "(each attention head gets dim/heads channels)")
        return self


class SequentialRecommender(nn.Module):
    objective: Literal["next", "cloze"] = "next"

    def __init__(self, cfg: SRSConfig, item_emb: ItemEmbedding) -> None:
        super().__init__()
        if item_emb.dim != cfg.dim:
            raise ValueError(f"item embedding dim {item_emb.dim} != model dim {cfg.dim}")
        self.cfg = cfg
        self.item_emb = item_emb

    @property
    def n_items(self) -> int:
        return self.item_emb.n_items

    def encode(self, seq: torch.Tensor) -> torch.Tensor:  # [B, T] -> [B, T, D]
        return self.encode_vectors(self.item_emb(seq), seq)

    def encode_vectors(self, x: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:
        """x [B, T, D] input vectors of seq's positions; seq [B, T] ids (0 = padding, for
        masks and positions) -> [B, T, D]. The seam through which LLM-ESR feeds its views
        (models/srs/llmesr.py) to an unchanged backbone."""
        raise NotImplementedError

    def forward(self, seq: torch.Tensor) -> torch.Tensor:  # [B, T] -> [B, D]
        return self.encode(seq)[:, -1]

    def score_all(self, user: torch.Tensor) -> torch.Tensor:  # [B, D] -> [B, N+1]
        return user @ self.item_emb.scoring_table().T

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """batch: input [B, T], target [B, T] (0 = no target), negative [B, T] for bce."""
        with self.item_emb.reuse():  # an adapted table: once for the input and the scores
            hidden = self.encode(batch["input"])  # [B, T, D]
            return self.loss_from_hidden(hidden, batch)

    def loss_from_hidden(self, hidden: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        target = batch["target"]
        valid = target > 0  # [B, T]
        h = hidden[valid]  # [M, D]
        pos = target[valid]  # [M]
        if self.cfg.loss in SAMPLED_LOSSES:
            neg = batch["shared_negative"]  # [K], drawn by the trainer (pipeline/negatives.py)
            seen = self.seen_items(batch, neg)[valid] if self.cfg.mask_seen else None  # [M, K]
            if self.cfg.loss == "gbce":
                return gbce(h, pos, self.item_emb(pos), neg, self.item_emb(neg), self.n_items,
                            self.cfg.gbce_t, seen)
            return sampled_softmax_ce(h, pos, self.item_emb(pos), neg, self.item_emb(neg), seen,
                                      batch["shared_log_q"])  # [K] logQ correction
        if self.cfg.loss == "auto":
            raise ValueError("model.loss=auto must be resolved against the catalogue first "
                             "(models.srs.base.resolve_loss)")
        if self.cfg.loss == "ce":
            seen = self.seen_items(batch)[valid] if self.cfg.mask_seen else None  # [M, N+1]
            return softmax_ce(self.score_all(h), pos, seen)  # logits [M, N+1]
        neg = batch["negative"][valid]  # [M]
        pos_logit = (h * self.item_emb(pos)).sum(-1)
        neg_logit = (h * self.item_emb(neg)).sum(-1)
        return sampled_bce(pos_logit, neg_logit)


    def seen_items(self, batch: dict[str, torch.Tensor],
                   among: torch.Tensor | None = None) -> torch.Tensor:
        """[B, T, N+1] bool (or [B, T, K] over the ids `among` [K]): what each position has
        already seen, left out of its softmax by `mask_seen`. Next-item: the items up to
        that position."""
        if among is not None:
            return seen_among(batch["input"], among)
        return seen_before(batch["input"], self.n_items)


def resolve_loss(cfg: SRSConfig, n_items: int) -> SRSConfig:
    """`auto` -> "ce" for catalogues up to AUTO_SAMPLED_ABOVE items, "sampled" above; any
    other loss unchanged. Resolved before hashing, so an `auto` run shares its cache with
    the loss it resolved to."""
    if cfg.loss != "auto":
        return cfg
    return cfg.model_copy(update={"loss": "ce" if n_items <= AUTO_SAMPLED_ABOVE else "sampled"})


def seen_before(seq: torch.Tensor, n_items: int) -> torch.Tensor:
    """[B, T] left-padded ids -> [B, T, N+1] bool: item i occurs in seq[b, :t+1]."""
    b, t = seq.shape
    hits = torch.zeros(b, t, n_items + 2, dtype=torch.int16, device=seq.device)
    hits.scatter_(2, seq[..., None], 1)
    seen = hits.cumsum(1, dtype=torch.int16) > 0
    seen[..., 0] = False
    return seen[..., : n_items + 1]


def positions_from_end(seq: torch.Tensor) -> torch.Tensor:
    """[B, T] position ids counting real items back from the end (last item = 1, pad = 0).

    Independent of how much left padding a batch carries, so trimming a batch to its
    longest sequence changes nothing.
    """
    real = (seq > 0).long()
    return real.flip(1).cumsum(1).flip(1) * real


def loss_step_bytes(cfg: SRSConfig, batch_size: int, n_items: int) -> int:
    """Rough peak bytes of one training step's loss tensors: for "ce", the [M, N+1] logits,
    their softmax and gradient (M = batch_size × max_len target positions at most) and, with
    mask_seen, the [B, T, N+2] int16 seen mask and its cumsum; for "sampled", the same with
    K negatives in place of N items; for "bce", two logits per position."""
    m = batch_size * cfg.max_len
    if cfg.loss == "bce":
        return m * 2 * 4 * 3
    width = n_items + 1 if cfg.loss in ("ce", "auto") else min(cfg.negatives, n_items) + 1
    total = m * width * 4 * 3
    if cfg.mask_seen:
        total += m * (width + 1) * 2 * 2
    return total
