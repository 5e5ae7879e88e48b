"""LLM-ESR's dual-view sequential recommender (Liu et al., NeurIPS 2024; METHODS.md §3.3).

Two item views of the same ids:
- semantic: a frozen LLM item table behind a trainable two-layer linear adapter
  (models.item_emb.FrozenAdapterEmbedding, P → P/2 → d, no activation);
- collaborative: a trainable ID table, initialised from the PCA of the same LLM table.

Each view's input sequence is re-expressed by a cross-attention whose queries come from
the *other* view (x̃_co = CA(q = x_se, kv = x_co), x̃_se = CA(q = x_co, kv = x_se)); ONE
backbone encoder (SASRec, GRU4Rec or BERT4Rec, unchanged, through `encode_vectors`) runs
over both; the user is u = [H_co; H_se] and item i is v_i = [e_co_i; e_se_i], so the score
u·v_i is the sum of the two views' logits (fusion at the logit level). Because the fused
hidden state and the fused item table are plain [.., 2d] tensors, the backbones' loss
(`loss_from_hidden`, ce | bce, mask_seen) and the common evaluation work unchanged.

Every part the paper ablates has a switch in `LLMESRConfig` (views, cross_attention,
shared_encoder, id_init). The retrieval-augmented self-distillation lives outside the
model (pipeline/methods/llmesr/distill.py), as an auxiliary loss.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from models.item_emb import ItemEmbedding
from models.srs.base import SequentialRecommender, SRSConfig, positions_from_end
from models.srs.registry import BACKBONES

View = Literal["dual", "semantic", "collaborative"]


class LLMESRConfig(BaseModel):
    """LLM-ESR's own switches (model + distillation), as `llmesr.<field>` overrides.

    The defaults are the paper's (§3.5): both views, cross-attention with 2 heads, a
    shared encoder, PCA initialisation of the ID view, and self-distillation towards the
    mean of 10 retrieved neighbours (out of 100 stored) with weight α = 0.1.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    views: View = "dual"
    cross_attention: bool = True
    shared_encoder: bool = True
    id_init: Literal["pca", "random"] = "pca"
    # Stacking: the item kind (e.g. items/llmemb-rat) whose vectors, PCA'd to d, initialise
    # the ID view instead of the semantic view's own; pinned to an exact version before
    # training (pipeline/requests.py), so the config hash names the table. None: the paper's.
    id_from: str | None = None
    xattn_heads: int = Field(2, ge=1)
    # Add each view's own sequence back to its cross-attention output (x + CA(·)). Not in
    # the paper, whose cross-attention replaces the view's input outright: without the
    # residual each position becomes an average over the history and loses its own item
    # (synthetic test NDCG@10 0.24-0.28 without, 0.42-0.44 with; ID-only 0.445). Our default
    # departs from the paper here; `llmesr.xattn_residual=false` gives the paper's form.
    xattn_residual: bool = True
    # Adapter width; None = half the LLM dim (the paper's 1536 → 768 → d).
    adapter_hidden: int | None = Field(None, ge=1)
    # Retrieval-augmented self-distillation (pipeline/methods/llmesr/distill.py); 0 switches it off.
    distill_weight: float = Field(0.1, ge=0)
    n_neighbours: int = Field(10, ge=1)
    retrieve_k: int = Field(100, ge=1)
    # The distillation target's teacher (models/losses/rasd.py): "exact" encodes the
    # neighbours at every step in training mode (the paper); "cached" reads them from a
    # cache of every user's eval-mode representation refreshed every `refresh_every` epochs;
    # "running" keeps that cache fresh with each step's own (training-mode) student rows
    # instead, at no extra forward pass; "validation" fills it from the trainer's validation
    # pass, which encodes every user anyway (every `eval_every` epochs).
    teacher: Literal["exact", "cached", "running", "validation"] = "exact"
    refresh_every: int = Field(1, ge=1)
    # "auto": train with and without RASD (two ordinary runs, each cached) and keep the one
    # with the better validation NDCG@10 (pipeline/runs.py), so LLM-ESR is never worse on
    # validation than its no-distillation variant; "on": distil as distill_weight says.
    rasd: Literal["on", "auto"] = "on"

    @model_validator(mode="after")
    def _check(self) -> LLMESRConfig:
        if self.n_neighbours > self.retrieve_k:
            raise ValueError(f"n_neighbours ({self.n_neighbours}) > retrieve_k ({self.retrieve_k})")
        return self

    def variant(self) -> str:
        """'llmesr', or 'llmesr(k=v,…)' naming the fields that differ from the defaults."""
        changed = self.model_dump(exclude_defaults=True)
        return "llmesr" if not changed else "llmesr(" + ",".join(f"{k}={v}" for k, v in changed.items()) + ")"


class CrossAttention(nn.Module):
    """Multi-head attention from one view's sequence (queries) over another's (keys/values).

    As in the paper's module: Q/K/V projections without bias, an output projection with
    bias, scaled dot products, padding keys hidden, no residual. `causal` hides later
    positions (needed whenever the backbone is trained to predict the next item).
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by cross-attention heads {heads}")
        self.heads = heads
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=False)
        self.out = nn.Linear(dim, dim)

    def forward(self, query: torch.Tensor, context: torch.Tensor, seq: torch.Tensor,
                causal: bool) -> torch.Tensor:
        """query, context [B, T, D] (two views of seq [B, T]) -> [B, T, D], zero at padding."""
        b, t, d = query.shape
        real = seq > 0  # [B, T]
        mask = real[:, None, None, :]  # [B, 1, 1, T] keys: only real items
        if causal:
            mask = mask & torch.ones(t, t, dtype=torch.bool, device=seq.device).tril()
        # A query may always see its own position, so padding rows never softmax over nothing.
        mask = mask | torch.eye(t, dtype=torch.bool, device=seq.device)

        def heads(z: torch.Tensor) -> torch.Tensor:  # [B, T, D] -> [B, H, T, D/H]
            return z.view(b, t, self.heads, d // self.heads).transpose(1, 2)

        a = F.scaled_dot_product_attention(heads(self.q(query)), heads(self.k(context)),
                                           heads(self.v(context)), attn_mask=mask)
        return self.out(a.transpose(1, 2).reshape(b, t, d)) * real[..., None]


class FusedItemEmbedding(ItemEmbedding):
    """The concatenation [collaborative; semantic] of the views present (dim = d per view).

    Scoring a fused user [B, 2d] against `scoring_table()` [N+1, 2d] is the sum of the
    per-view logits. Row 0 (padding) is zero in both views.
    """

    def __init__(self, collaborative: ItemEmbedding | None, semantic: ItemEmbedding | None) -> None:
        present = [v for v in (collaborative, semantic) if v is not None]
        if not present:
            raise ValueError("LLM-ESR needs at least one view")
        if len({(v.n_items, v.dim) for v in present}) != 1:
            raise ValueError("the two views must cover the same items with the same dim")
        super().__init__(present[0].n_items, sum(v.dim for v in present))
        self.collaborative = collaborative
        self.semantic = semantic

    @contextmanager
    def reuse(self) -> Iterator[None]:
        with ExitStack() as stack:
            for view in (self.collaborative, self.semantic):
                if view is not None:
                    stack.enter_context(view.reuse())
            yield

    def views(self, ids: torch.Tensor) -> list[torch.Tensor]:
        """ids [*] -> one [*, d] tensor per present view, collaborative first."""
        return [v(ids) for v in (self.collaborative, self.semantic) if v is not None]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:  # [*] -> [*, dim]
        return torch.cat(self.views(ids), dim=-1)

    def scoring_table(self) -> torch.Tensor:  # [N+1, dim]
        return torch.cat([v.scoring_table() for v in (self.collaborative, self.semantic)
                          if v is not None], dim=-1)


class _VectorInput(ItemEmbedding):
    """Stands in for the item table of a backbone that only ever receives vectors."""

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("LLM-ESR's encoders take vectors through encode_vectors, not ids")

    def scoring_table(self) -> torch.Tensor:
        raise RuntimeError("LLM-ESR scores with its fused item table")


class LLMESR(SequentialRecommender):
    """Dual-view LLM-ESR over any backbone of models.srs (cfg.backbone).

    `encode(seq)` -> [B, T, k·d] with k = number of views; `forward`, `score_all`, `loss`
    and `loss_from_hidden` keep the SequentialRecommender contract (user [B, k·d],
    scores [B, N+1]).
    """

    def __init__(self, cfg: SRSConfig, esr: LLMESRConfig, collaborative: ItemEmbedding | None,
                 semantic: ItemEmbedding | None) -> None:
        # The base constructor insists item dim == cfg.dim; here the fused table is k·d wide.
        nn.Module.__init__(self)
        for view in (collaborative, semantic):
            if view is not None and view.dim != cfg.dim:
                raise ValueError(f"view dim {view.dim} != model dim {cfg.dim}")
        if (collaborative is None) != (esr.views == "semantic") or \
                (semantic is None) != (esr.views == "collaborative"):
            raise ValueError(f"views={esr.views!r} does not match the tables given")
        self.cfg, self.esr = cfg, esr
        self.item_emb = FusedItemEmbedding(collaborative, semantic)
        backbone = BACKBONES[cfg.backbone]
        self.objective = backbone.objective
        dual = esr.views == "dual"
        n_encoders = 2 if dual and not esr.shared_encoder else 1
        self.encoders = nn.ModuleList(
            backbone(cfg, _VectorInput(self.item_emb.n_items, cfg.dim)) for _ in range(n_encoders))
        self.to_collaborative: CrossAttention | None = None
        self.to_semantic: CrossAttention | None = None
        self.xattn_pos: nn.Embedding | None = None
        if dual and esr.cross_attention:
            self.to_collaborative = CrossAttention(cfg.dim, esr.xattn_heads)  # q: semantic
            self.to_semantic = CrossAttention(cfg.dim, esr.xattn_heads)  # q: collaborative
            if cfg.backbone != "gru4rec":
                # The paper adds one position table, shared by both views, to the item
                # vectors *before* the cross-attention (its GRU4Rec variant has none);
                # the backbone then adds its own positions to the attention's output.
                self.xattn_pos = nn.Embedding(cfg.max_len + 2, cfg.dim, padding_idx=0)
                nn.init.normal_(self.xattn_pos.weight, std=cfg.dim**-0.5)
                with torch.no_grad():
                    self.xattn_pos.weight[0].zero_()
        # The paper's cross-attention has no causal mask (its SASRec is non-causal too,
        # METHODS.md §1.3). With a next-item objective that lets position t read item t+1,
        # its own target, so it follows the backbone: causal unless the backbone is not.
        self.causal_xattn = self.objective == "next" and (cfg.backbone != "sasrec" or cfg.causal)

    def encode(self, seq: torch.Tensor) -> torch.Tensor:  # [B, T] -> [B, T, k·d]
        views = self.item_emb.views(seq)  # k × [B, T, d]
        if self.to_collaborative is not None and self.to_semantic is not None:
            co, se = views
            if self.xattn_pos is not None:
                pos = self.xattn_pos(positions_from_end(seq))  # [B, T, d]
                co, se = co + pos, se + pos
            views = [self.to_collaborative(se, co, seq, self.causal_xattn),
                     self.to_semantic(co, se, seq, self.causal_xattn)]
            if self.esr.xattn_residual:
                views = [co + views[0], se + views[1]]
        if len(views) == 2 and len(self.encoders) == 1:
            # One shared encoder: both views go through it as one [2B, T, d] batch (the same
            # arithmetic per row as two calls, in half the operator dispatches).
            b = seq.shape[0]
            both = self.encoders[0].encode_vectors(torch.cat(views), seq.repeat(2, 1))  # [2B, T, d]
            return torch.cat([both[:b], both[b:]], dim=-1)  # [B, T, 2d]
        hidden = [self.encoders[min(i, len(self.encoders) - 1)].encode_vectors(x, seq)
                  for i, x in enumerate(views)]
        return torch.cat(hidden, dim=-1)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with self.item_emb.reuse():  # the semantic view adapted once for the whole step
            hidden = self.encode(batch["input"])  # [B, T, k·d]
            # A next-item batch's input is each user's training history but the last item,
            # so its last position is the user representation that self-distillation pulls
            # on: kept for `take_user`, which reuses this pass as the paper does instead of
            # encoding the batch a second time.
            self._user = hidden[:, -1] if self.training and self.objective == "next" else None
            return self.loss_from_hidden(hidden, batch)

    def take_user(self) -> torch.Tensor | None:
        """[B, k·d] user representation of the last training batch's rows (once), or None."""
        user, self._user = getattr(self, "_user", None), None
        return user

    def forward(self, seq: torch.Tensor) -> torch.Tensor:  # [B, T] -> [B, k·d]
        if self.objective == "cloze":  # BERT4Rec: score from a [MASK] after the history
            mask = torch.full_like(seq[:, :1], self.item_emb.mask_id)
            seq = torch.cat([seq, mask], dim=1)[:, -self.cfg.max_len:]
        return self.encode(seq)[:, -1]

    def score_all(self, user: torch.Tensor) -> torch.Tensor:  # [B, k·d] -> [B, N+1]
        scores = user @ self.item_emb.scoring_table().T
        scores[:, 0] = -torch.inf  # padding is never a candidate
        return scores
