"""E4SRec: an LLM that *is* the recommender (METHODS.md §2, arXiv 2312.02443).

Pre-trained SASRec ID embeddings (frozen) are linearly projected into the LLM's input
embedding space and spliced between an instruction prefix and a response suffix, both
embedded with the LLM's own frozen token table. The LLM (frozen, LoRA on its MLP
projections) reads the prompt; the hidden state of the last position goes through a
linear item head with one logit per item, so one forward pass scores the whole catalogue
and every output is a valid item id.

Deviations from the released code, on purpose (§2.8):
- the history is capped at `max_history` items (the code never truncates it, issue #7);
- the padding class can never be predicted: its logit is -inf in training and scoring;
- position ids count real tokens only (the padding is masked *and* skipped), so a user's
  scores do not depend on who else is in the batch or how long the padding is.

Knows nothing of files, tokenizers or the store: the caller passes a loaded transformer,
the ID table and the template's token ids.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from models.llm.lora import add_lora

MLP_TARGETS = ("gate_proj", "up_proj", "down_proj")


class E4SRecModelConfig(BaseModel):
    """The module's shape: history cap and LoRA (E4SRec's r 16, α 16, dropout 0.05, MLP only)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    max_history: int = Field(50, ge=1)  # most recent items kept in the prompt
    lora_r: int = Field(16, ge=1)
    lora_alpha: float = Field(16.0, gt=0)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    lora_targets: tuple[str, ...] = MLP_TARGETS
    # The item layer, logits = h·Wᵀ with one row of W per item. "free": W is a plain
    # trainable matrix (the paper). "id_factorized": W = E·A + R, E the frozen ID table,
    # A [d, H] and the residual rows R (from zero) trainable: every item, rare ones too,
    # starts with a row shaped by its pre-trained embedding instead of noise.
    head: Literal["free", "id_factorized"] = "free"
    head_bias: bool = False  # the paper's item layer has none
    # Run the constant instruction prefix once per batch (batch 1) and share its keys and
    # values across users; same scores, fewer tokens. False: one plain forward per batch.
    share_prefix: bool = True


class ItemHead(nn.Module):
    """One logit per item id: hidden [B, H] -> [B, N+1] = h·Wᵀ (+ b), W = weight(id_table)."""

    def __init__(self, hidden: int, n_rows: int, id_dim: int, kind: str, bias: bool,
                 device: torch.device) -> None:
        super().__init__()
        self.kind = kind
        self.rows = nn.Parameter(torch.zeros(n_rows, hidden, device=device))  # [N+1, H]
        self.from_ids = None
        if kind == "free":
            nn.init.kaiming_uniform_(self.rows, a=math.sqrt(5))  # nn.Linear's default
        else:
            self.from_ids = nn.Linear(id_dim, hidden, bias=False, device=device)  # A
        self.bias = nn.Parameter(torch.zeros(n_rows, device=device)) if bias else None

    def weight(self, id_table: torch.Tensor) -> torch.Tensor:
        """The effective [N+1, H] item matrix (what is exported as the item vectors)."""
        if self.from_ids is None:
            return self.rows
        return self.rows + self.from_ids(id_table)

    def forward(self, hidden: torch.Tensor, id_table: torch.Tensor) -> torch.Tensor:
        return F.linear(hidden, self.weight(id_table), self.bias)

    @torch.no_grad()
    def grow(self, residual: torch.Tensor) -> None:
        """Append rows (residual [K, H]; the bias of new rows = the mean existing bias)."""
        self.rows = nn.Parameter(torch.cat([self.rows, residual.to(self.rows)]))
        if self.bias is not None:
            extra = self.bias[1:].mean().expand(len(residual))
            self.bias = nn.Parameter(torch.cat([self.bias, extra]))


class E4SRec(nn.Module):
    """Scores every item for a batch of histories in one LLM forward pass.

    llm: a bare transformer (e.g. `LlamaModel`, no LM head) in any dtype; LoRA is added
    here and every base weight (token embeddings included) is frozen.
    id_table: [N+1, d] pre-trained item embeddings, row 0 = padding; frozen.
    prefix_ids [P], suffix_ids [S]: the template's token ids (no special tokens).
    """

    def __init__(self, llm: nn.Module, id_table: torch.Tensor, prefix_ids: torch.Tensor,
                 suffix_ids: torch.Tensor, cfg: E4SRecModelConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or E4SRecModelConfig()
        hidden = int(llm.config.hidden_size)
        self.llm = add_lora(llm, r=self.cfg.lora_r, alpha=self.cfg.lora_alpha,
                            dropout=self.cfg.lora_dropout, targets=list(self.cfg.lora_targets),
                            task_type="FEATURE_EXTRACTION")
        for p in self.llm.parameters():
            if p.requires_grad:  # fp32 adapters on (possibly bf16) frozen weights
                p.data = p.data.float()
        device = self.llm.get_input_embeddings().weight.device
        self.item_ids = nn.Embedding.from_pretrained(id_table.detach().float().to(device),
                                                     freeze=True)  # [N+1, d]
        self.input_proj = nn.Linear(id_table.shape[1], hidden, device=device)
        self.head = ItemHead(hidden, id_table.shape[0], id_table.shape[1], self.cfg.head,
                             self.cfg.head_bias, device)
        self.register_buffer("prefix_ids", prefix_ids.long().to(device), persistent=False)  # [P]
        self.register_buffer("suffix_ids", suffix_ids.long().to(device), persistent=False)  # [S]

    @property
    def n_items(self) -> int:
        return self.item_ids.num_embeddings - 1

    @property
    def base_model(self) -> nn.Module:
        """The wrapped transformer (its forward runs once per `forward` call)."""
        return self.llm.get_base_model()

    def compact(self, history: torch.Tensor) -> torch.Tensor:
        """history [B, L] (0 = pad, real items in time order) -> [B, L'] with each row's last
        max_history real items right-aligned and L' the longest such row."""
        real = history > 0
        history = history.gather(1, torch.argsort(real.int(), dim=1, stable=True))
        n = int(real.sum(1).max()) if history.numel() else 0
        return history[:, history.shape[1] - min(n, self.cfg.max_history):]

    def _ones(self, b: int, n: int) -> torch.Tensor:
        return torch.ones(b, n, dtype=torch.long, device=self.prefix_ids.device)

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        """history [B, L] -> hidden state of the prompt's last (suffix) token [B, H].

        One forward over the batch. With `share_prefix` the instruction prefix, identical
        for every user, is run once (batch 1) and its keys/values serve the whole batch:
        the prompt is [prefix ; padding ; items ; suffix] (the released code's layout) with
        positions counted over real tokens, so nothing changes but the cost (~40 % fewer
        tokens on CPU). Otherwise the padding goes to the far left of the whole prompt.
        """
        history = self.compact(history)  # [B, L']
        b, n_pre = history.shape[0], len(self.prefix_ids)
        tokens = self.llm.get_input_embeddings()
        suf = tokens(self.suffix_ids)[None].expand(b, -1, -1)  # [B, S, H]
        items = self.input_proj(self.item_ids(history)).to(suf.dtype)  # [B, L', H]
        rest = torch.cat([items, suf], dim=1)  # [B, L'+S, H]
        rest_mask = torch.cat([(history > 0).long(), self._ones(b, len(self.suffix_ids))], dim=1)
        if self.cfg.share_prefix and n_pre:
            pre = tokens(self.prefix_ids)[None]  # [1, P, H]
            cache = self.llm(inputs_embeds=pre, attention_mask=self._ones(1, n_pre),
                             position_ids=torch.arange(n_pre, device=pre.device)[None],
                             use_cache=True).past_key_values
            cache.batch_repeat_interleave(b)  # [B, heads, P, d] per layer; gradients flow
            mask = torch.cat([self._ones(b, n_pre), rest_mask], dim=1)  # [B, P+L'+S]
            positions = n_pre + (rest_mask.cumsum(1) - 1).clamp(min=0)  # [B, L'+S]
            out = self.llm(inputs_embeds=rest, attention_mask=mask, position_ids=positions,
                           past_key_values=cache, use_cache=True)
            return out.last_hidden_state[:, -1]
        pre = tokens(self.prefix_ids)[None].expand(b, -1, -1)  # [B, P, H]
        x = torch.cat([pre, rest], dim=1)  # [B, T, H]
        mask = torch.cat([self._ones(b, n_pre), rest_mask], dim=1)  # [B, T]
        # Padding to the far left: the prompt stays contiguous, the last position is the
        # suffix's last token, and positions count real tokens only.
        order = torch.argsort(mask, dim=1, stable=True)  # [B, T]
        x = x.gather(1, order[..., None].expand_as(x))
        mask = mask.gather(1, order)
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        return self.llm(inputs_embeds=x, attention_mask=mask, position_ids=positions).last_hidden_state[:, -1]

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden [B, H] -> fp32 logits [B, N+1]; column 0 (padding) is -inf, never ranked."""
        with torch.autocast(hidden.device.type, enabled=False):
            logits = self.head(hidden.float(), self.item_ids.weight)
        pad = torch.zeros(logits.shape[1], dtype=torch.bool, device=logits.device)
        pad[0] = True
        return logits.masked_fill(pad, float("-inf"))

    def head_weight(self) -> torch.Tensor:
        """[N+1, H] the item head's effective rows (row i scores item i)."""
        return self.head.weight(self.item_ids.weight)

    def score(self, history: torch.Tensor) -> torch.Tensor:
        """history [B, L] -> [B, N+1] scores of every item, one LLM forward for the batch."""
        return self.logits(self(history))

    def loss(self, history: torch.Tensor, target: torch.Tensor, mask_seen: bool = False) -> torch.Tensor:
        """Full-softmax cross-entropy over the catalogue; target [B] in 1..N.

        The padding class is outside the softmax (-inf logit). With `mask_seen`, the items
        of each history (the target excepted) are left out too, as the masked full-ranking
        evaluation leaves them out.
        """
        if bool((target <= 0).any()):
            raise ValueError("targets must be item ids 1..N (0 is padding)")
        logits = self.score(history)  # [B, N+1]
        if mask_seen:
            seen = torch.zeros_like(logits, dtype=torch.bool).scatter_(1, history, True)
            seen[torch.arange(len(target), device=target.device), target] = False
            logits = logits.masked_fill(seen, float("-inf"))
        return F.cross_entropy(logits, target)

    # ---- trainable state and extensibility ------------------------------------------

    def trainable_names(self) -> list[str]:
        return [n for n, p in self.named_parameters() if p.requires_grad]

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """LoRA + input projection + item head (cloned, on the CPU): all that training changes."""
        names = set(self.trainable_names())
        return {k: v.detach().cpu().clone() for k, v in self.state_dict().items() if k in names}

    def load_trainable_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        names = set(self.trainable_names())
        missing, unexpected = names - set(state), set(state) - names
        if missing or unexpected:
            raise KeyError(f"trainable state mismatch: missing {sorted(missing)[:3]}, "
                           f"unexpected {sorted(unexpected)[:3]}")
        self.load_state_dict(state, strict=False)

    @torch.no_grad()
    def add_items(self, id_rows: torch.Tensor, head_rows: torch.Tensor | None = None) -> range:
        """Append K new items without touching the LLM or any existing row (E4SRec §2.7).

        id_rows [K, d]: their pre-trained ID embeddings. head_rows [K, H]: their effective
        item-head rows; by default the mean existing row ("free" head, a neutral start to
        fine-tune from) or the rows their ID embeddings give ("id_factorized": new items are
        scored from their embeddings at once). Existing items keep ids and scores.
        """
        k, old = id_rows.shape[0], self.n_items
        table = self.item_ids.weight
        self.item_ids = nn.Embedding.from_pretrained(torch.cat([table, id_rows.to(table)]),
                                                     freeze=True)
        new_ids = self.item_ids.weight[old + 1:]  # [K, d]
        base = self.head.from_ids(new_ids) if self.head.from_ids is not None else 0.0
        if head_rows is None:
            residual = (torch.zeros(k, self.head.rows.shape[1], device=table.device)
                        if self.head.from_ids is not None
                        else self.head.rows[1:].mean(0, keepdim=True).expand(k, -1))
        else:
            residual = head_rows.to(self.head.rows) - base
        self.head.grow(residual)
        return range(old + 1, old + 1 + k)
