"""One evaluation harness for every method: full and sampled ranking, head/tail groups.

Protocols (every metric name carries one):
- `full`: the target is ranked against every item; items of the user's input history are
  masked out (`mask_history`), the padding id never counts. The target's own score is
  read before masking, so a repeat-consumption target is still ranked.
- `s100`: the target against the user's 100 fixed negatives (pipeline.split).
Ties are broken pessimistically: the target ranks below every item with an equal score,
so a collapsed model scores zero rather than perfect.
Groups: head items = the top 20% of items by training popularity, tail = the rest; head
users = the top 20% by training length. Explicit thresholds replace the fractions.
Users are scored in chunks; an SRS model's chunks hold users of one padding window each
(models.sequences.window_len: a history is padded to the power of two above its length, not
to max_len). Each user's rank depends only on its own row of scores, so metrics do not
depend on the evaluation batch size. When a batch's [B, N+1] scores would pass
DENSE_LIMIT_BYTES (a catalogue of ~500k items and up), an SRS scorer (`Factored`) is ranked
item chunk by item chunk instead: memory O(B·chunk), the same ranks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from models.sequences import window_batches
from pipeline.errors import DivergedError
from pipeline.split import Split

# Scores every item for a batch: (users [B] 1-based ids, input sequences) -> [B, N+1].
Scorer = Callable[[np.ndarray, list[np.ndarray]], torch.Tensor]
# Above this many bytes of [B, N+1] scores per batch, a `Factored` scorer is ranked item chunk
# by item chunk instead (memory O(B·chunk)); below it the dense path runs, as it always did.
DENSE_LIMIT_BYTES = 512 << 20
ITEM_CHUNK = 65_536


@dataclass(frozen=True)
class Factored:
    """A scorer whose scores are user vectors times an item table (every SRS here). Called,
    it is the dense scorer; `users` [B, D] and `table` [N+1, D] let huge catalogues be
    ranked in item chunks without a [B, N+1] tensor."""

    dense: Scorer
    users: Callable[[np.ndarray, list[np.ndarray]], torch.Tensor]
    table: Callable[[], torch.Tensor]

    def __call__(self, users: np.ndarray, inputs: list[np.ndarray]) -> torch.Tensor:
        return self.dense(users, inputs)
GROUPS = ("overall", "head_item", "tail_item", "head_user", "tail_user")


class EvalConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    ks: tuple[Annotated[int, Field(ge=1)], ...] = Field((5, 10, 20), min_length=1)
    mrr_k: int = Field(10, ge=1)
    mask_history: bool = True
    batch_size: int = Field(256, ge=1)
    head_item_frac: float = Field(0.2, gt=0, lt=1)
    head_user_frac: float = Field(0.2, gt=0, lt=1)
    item_pop_threshold: int | None = None  # popularity >= this ⇒ head item (papers' values)
    user_len_threshold: int | None = None  # training length >= this ⇒ head user
    # Evaluate a fixed, seeded sample of this many users instead of all (huge datasets):
    # rows then carry n_users = the sample's and ci95, the 95% interval's half-width.
    user_sample: int | None = Field(None, ge=1)
    sample_seed: int = 0


@dataclass(frozen=True)
class Groups:
    head_items: np.ndarray  # [N+1] bool by item id
    head_users: np.ndarray  # [U] bool, index u-1

    @classmethod
    def from_split(cls, split: Split, cfg: EvalConfig) -> Groups:
        pop = split.train_item_counts()
        lengths = split.train_lengths()
        if cfg.item_pop_threshold is not None:
            head_items = pop >= cfg.item_pop_threshold
        else:
            head_items = _top_fraction(pop[1:], cfg.head_item_frac)
            head_items = np.concatenate([[False], head_items])
        if cfg.user_len_threshold is not None:
            head_users = lengths >= cfg.user_len_threshold
        else:
            head_users = _top_fraction(lengths, cfg.head_user_frac)
        return cls(head_items=head_items, head_users=head_users)


def _top_fraction(values: np.ndarray, frac: float) -> np.ndarray:
    """Mark the ceil(frac·n) largest values (stable: lower index wins a tie)."""
    n_head = int(np.ceil(frac * len(values)))
    order = np.argsort(-values, kind="stable")
    mask = np.zeros(len(values), dtype=bool)
    mask[order[:n_head]] = True
    return mask


def full_ranks(scores: torch.Tensor, targets: torch.Tensor, history: list[np.ndarray] | None) -> torch.Tensor:
    """0-based pessimistic rank of each target among all items. scores [B, N+1], targets [B]."""
    scores = scores.float().clone()
    pos = scores.gather(1, targets[:, None])  # [B, 1]
    scores[:, 0] = -torch.inf  # padding id
    if history is not None:
        rows = np.repeat(np.arange(len(history)), [len(h) for h in history])
        cols = np.concatenate(history) if history else np.empty(0, dtype=np.int64)
        scores[torch.from_numpy(rows), torch.from_numpy(cols)] = -torch.inf
    scores.scatter_(1, targets[:, None], -torch.inf)  # the target itself is not a competitor
    return (scores >= pos).sum(dim=1)


def factored_ranks(user: torch.Tensor, table: torch.Tensor, targets: torch.Tensor,
                   history: list[np.ndarray] | None, negatives: torch.Tensor,
                   chunk: int = ITEM_CHUNK) -> tuple[torch.Tensor, torch.Tensor]:
    """(full ranks [B], sampled ranks [B]) of user [B, D] against table [N+1, D], counted
    over item chunks: never a [B, N+1] tensor. The same rules as `full_ranks` and
    `sampled_ranks`; the target's score is a dot product rather than a matmul entry, so a
    rank can differ from the dense path's only on a tie in the last bit."""
    user, table = user.float(), table.float()
    pos = (user * table[targets]).sum(-1, keepdim=True)  # [B, 1]
    if not bool(torch.isfinite(pos).all()):
        raise DivergedError("the model's scores are NaN or infinite")
    b, n1 = len(user), len(table)
    if history is not None:
        rows = torch.from_numpy(np.repeat(np.arange(b), [len(h) for h in history]))
        cols = torch.from_numpy(np.concatenate(history) if history else np.empty(0, np.int64))
    full = torch.zeros(b, dtype=torch.long)
    for c0 in range(0, n1, chunk):
        c1 = min(c0 + chunk, n1)
        s = user @ table[c0:c1].T  # [B, C]
        if not bool(torch.isfinite(s[:, 1:] if c0 == 0 else s).all()):
            raise DivergedError("the model's scores are NaN or infinite")
        if c0 == 0:
            s[:, 0] = -torch.inf  # padding id
        if history is not None:
            inside = (cols >= c0) & (cols < c1)
            s[rows[inside], cols[inside] - c0] = -torch.inf
        here = (targets >= c0) & (targets < c1)
        s[here.nonzero().squeeze(1), targets[here] - c0] = -torch.inf  # not its own competitor
        full += (s >= pos).sum(dim=1)
    neg = (user[:, None, :] * table[negatives]).sum(-1)  # [B, M]
    return full, (neg >= pos).sum(dim=1)


def sampled_ranks(scores: torch.Tensor, targets: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
    """0-based pessimistic rank among the target and its fixed negatives. negatives [B, M]."""
    pos = scores.gather(1, targets[:, None])  # [B, 1]
    neg = scores.gather(1, negatives)  # [B, M]
    return (neg >= pos).sum(dim=1)


def metrics_from_ranks(ranks: np.ndarray, ks: tuple[int, ...], mrr_k: int) -> dict[str, float]:
    """Mean HR@k, NDCG@k (one relevant item) and MRR@mrr_k over 0-based ranks."""
    return {m: float(v.mean()) for m, v in per_user_metrics(ranks, ks, mrr_k).items()}


def per_user_metrics(ranks: np.ndarray, ks: tuple[int, ...], mrr_k: int) -> dict[str, np.ndarray]:
    """Each user's HR@k, NDCG@k (one relevant item) and MRR@mrr_k from 0-based ranks [U]."""
    out: dict[str, np.ndarray] = {}
    if len(ranks) == 0:
        return out
    for k in ks:
        hit = ranks < k
        out[f"hr@{k}"] = hit.astype(np.float64)
        out[f"ndcg@{k}"] = np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0)
    out[f"mrr@{mrr_k}"] = np.where(ranks < mrr_k, 1.0 / (ranks + 1.0), 0.0)
    return out


def _check_finite(scores: torch.Tensor, stage: str, idx: np.ndarray) -> None:
    """NaN compares false with everything, so a NaN target would rank first: refuse instead."""
    bad = ~torch.isfinite(scores[:, 1:]).all(dim=1)  # column 0 is padding
    if bool(bad.any()):
        users = (idx[bad.cpu().numpy()] + 1).tolist()
        raise DivergedError(f"the model's {stage} scores are NaN or infinite for "
                            f"{len(users)} users (first: user {users[0]})")


def rank_users(scorer: Scorer, split: Split, stage: str, cfg: EvalConfig,
               users: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Ranks of every user's `stage` target under both protocols: {'full': [U], 's100': [U]}.
    With `users` (0-based indices), of those users only, in that order: one process's share
    of a multi-process evaluation (pipeline/distributed.py)."""
    inputs = split.inputs(stage)
    targets = split.targets(stage)
    chosen = np.arange(split.n_users) if users is None else np.asarray(users, dtype=np.int64)
    full = np.zeros(len(chosen), dtype=np.int64)
    sampled = np.zeros(len(chosen), dtype=np.int64)
    # An SRS scorer (`Factored`) pads a batch to its window: its batches hold users of one
    # padding window (models.sequences.window_batches), so each history is encoded at its
    # own window instead of max_len. Other scorers (E4SRec, pop) take users in order.
    if isinstance(scorer, Factored):
        lengths = np.array([len(inputs[i]) for i in chosen], dtype=np.int64)
        batches = window_batches(lengths, cfg.batch_size)
    else:
        batches = [np.arange(i, min(i + cfg.batch_size, len(chosen)))
                   for i in range(0, len(chosen), cfg.batch_size)]
    with torch.inference_mode():
        for pos in batches:
            idx = chosen[pos]
            batch_inputs = [inputs[i] for i in idx]
            tgt = torch.from_numpy(targets[idx])
            hist = batch_inputs if cfg.mask_history else None
            negs = torch.from_numpy(split.negatives[idx])
            if isinstance(scorer, Factored) and len(idx) * (split.n_items + 1) * 4 > DENSE_LIMIT_BYTES:
                f, s = factored_ranks(scorer.users(idx + 1, batch_inputs), scorer.table(), tgt,
                                      hist, negs, ITEM_CHUNK)
                full[pos], sampled[pos] = f.numpy(), s.numpy()
                continue
            scores = scorer(idx + 1, batch_inputs)  # [B, N+1]
            _check_finite(scores, stage, idx)
            full[pos] = full_ranks(scores, tgt, hist).numpy()
            sampled[pos] = sampled_ranks(scores.float(), tgt, negs).numpy()
    return {"full": full, f"s{split.negatives.shape[1]}": sampled}


def evaluate(scorer: Scorer, split: Split, stage: str, cfg: EvalConfig) -> list[dict]:
    """Rows {protocol, group, metric, value, n_users, ci95} for every protocol × group ×
    metric, over every user or over `cfg.user_sample` of them."""
    users = sample_users(split.n_users, cfg)
    return metric_rows(rank_users(scorer, split, stage, cfg, users=users), split, stage, cfg,
                       users=users)


def sample_users(n_users: int, cfg: EvalConfig) -> np.ndarray | None:
    """The fixed, seeded sample of 0-based users `cfg.user_sample` asks for, sorted; None
    (every user) when there is no sample or it would hold them all. Independent of the
    model and the training seed, so every run on a dataset is scored on the same users."""
    if cfg.user_sample is None or cfg.user_sample >= n_users:
        return None
    rng = np.random.default_rng(cfg.sample_seed)
    return np.sort(rng.choice(n_users, size=cfg.user_sample, replace=False))


def metric_rows(ranks: dict[str, np.ndarray], split: Split, stage: str, cfg: EvalConfig,
                users: np.ndarray | None = None) -> list[dict]:
    """`evaluate`'s rows from the users' ranks ({protocol: [U]} in user order; with `users`,
    the ranks of those 0-based users, in that order)."""
    groups = Groups.from_split(split, cfg)
    chosen = np.arange(split.n_users) if users is None else users
    target_head = groups.head_items[split.targets(stage)[chosen]]
    masks = {
        "overall": np.ones(len(chosen), dtype=bool),
        "head_item": target_head,
        "tail_item": ~target_head,
        "head_user": groups.head_users[chosen],
        "tail_user": ~groups.head_users[chosen],
    }
    rows = []
    for protocol, r in ranks.items():
        for group, mask in masks.items():
            per_user = per_user_metrics(r[mask], cfg.ks, cfg.mrr_k)
            for metric, values in per_user.items():
                rows.append(
                    {"protocol": protocol, "group": group, "metric": metric,
                     "value": float(values.mean()), "n_users": int(mask.sum()),
                     "ci95": ci95(values)}
                )
    return rows


def ci95(values: np.ndarray) -> float:
    """Half-width of the normal 95% interval of a mean over users: 1.96·s/√n."""
    n = len(values)
    return float(1.96 * values.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")


def pick(rows: list[dict], protocol: str = "full", group: str = "overall", metric: str = "ndcg@10") -> float:
    for r in rows:
        if (r["protocol"], r["group"], r["metric"]) == (protocol, group, metric):
            return float(r["value"])
    raise KeyError(f"{protocol}/{group}/{metric}")
