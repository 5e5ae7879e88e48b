"""TSLRec's data side: latent categories, per-user targets, prompts as token ids, metrics.

Established (METHODS.md §5.1): latent categories are k-means clusters of a pre-trained
SRS model's item embeddings, and each user's SFT target is the normalised histogram of
those categories over the user's sequence, one example per user. Our reconstruction
(§5.2): clustering the *L2-normalised* `items/sasrec-id` rows, the histogram over the
*training* part only (Split.train; valid/test items never count), the prompt wording,
and the truncation to the most recent items / tokens.

Prompts are assembled as token ids from pieces tokenised once (prefix, one piece per
item, separator, suffix), so truncating 8k users to a token budget costs no re-tokenising
and never cuts an item in half: the oldest items are dropped first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from embeddings_store import kmeans
from pipeline.errors import InputError

LETTERS = [chr(c) for c in range(ord("A"), ord("Z") + 1)] + [chr(c) for c in range(ord("a"), ord("z") + 1)]


@dataclass(frozen=True)
class Categories:
    """k-means categories of items 1..N: item_category[i] ∈ 0..k-1, index 0 (pad) is -1."""

    item_category: np.ndarray  # [N+1] int64
    k: int
    seed: int
    inertia: float
    sizes: list[int]  # items per category

    def describe(self) -> dict:
        return {"k": self.k, "seed": self.seed, "inertia": self.inertia, "sizes": self.sizes}


def latent_categories(vectors: np.ndarray, k: int, seed: int = 0, niter: int = 25) -> Categories:
    """vectors [N, D], row i-1 ↔ item i -> faiss k-means on the L2-normalised rows."""
    x = np.asarray(vectors, dtype=np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)  # [N, D]
    if not 2 <= k <= len(x):
        raise InputError(f"TSLRec needs 2 <= k <= {len(x)} (the number of items), got k={k}")
    res = kmeans(x, k, seed=seed, niter=niter)
    item_category = np.concatenate([[-1], res.assignment]).astype(np.int64)  # [N+1]
    sizes = np.bincount(res.assignment, minlength=k).tolist()
    return Categories(item_category, k, seed, float(res.inertia), sizes)


def category_histograms(train: Sequence[np.ndarray], item_category: np.ndarray, k: int) -> np.ndarray:
    """[U, K] float64: row u-1 = share of each category among user u's *training* items.

    Pass `Split.train`. A user with no training item (impossible after leave_one_out,
    which needs 3 interactions) would get the uniform distribution.
    """
    out = np.full((len(train), k), 1.0 / k)
    for u, seq in enumerate(train):
        cats = item_category[np.asarray(seq, dtype=np.int64)]
        if len(cats):
            out[u] = np.bincount(cats, minlength=k) / len(cats)
    return out


def split_users(n_users: int, heldout_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(SFT user indices, held-out user indices), 0-based (index u-1 ↔ user u), seeded."""
    perm = np.random.default_rng(seed).permutation(n_users)
    n_out = round(heldout_fraction * n_users)
    return np.sort(perm[n_out:]), np.sort(perm[:n_out])


def batch_schedule(users: np.ndarray, batch_size: int, steps: int, seed: int) -> np.ndarray:
    """[steps, B] user indices: seeded passes over `users`, each a fresh permutation.

    Fixed up front so a resumed run and the frozen-feature baseline see the same batches.
    """
    if len(users) < batch_size:
        raise InputError(f"TSLRec SFT needs at least batch_size={batch_size} users, has {len(users)}")
    rng = np.random.default_rng(seed)
    need = steps * batch_size
    order = np.concatenate([rng.permutation(users) for _ in range(-(-need // len(users)))])
    return order[:need].reshape(steps, batch_size)


def reconstruction_metrics(probs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """Mean KL(target ‖ probs) and top-1 accuracy over rows ([M, K] each).

    top-1 counts a row as right when the predicted category carries the target's largest
    share (ties in the target all count).
    """
    p = np.asarray(targets, dtype=np.float64)
    q = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0).sum(axis=1)  # [M]
    pick = q.argmax(axis=1)
    top1 = p[np.arange(len(p)), pick] >= p.max(axis=1) - 1e-12
    return {"kl": float(kl.mean()), "top1": float(top1.mean()), "n": len(p)}


def category_names(k: int) -> list[str]:
    """Category labels shown in prompts (and read by the verbalizer): A–Z, a–z, then c53…"""
    return LETTERS[:k] if k <= len(LETTERS) else [f"c{i + 1}" for i in range(k)]


class TslrecPrompt(BaseModel):
    """How a user's training sequence becomes the SFT input. The wording is ours (§5.2)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    prefix: str = "Here is a user's interaction sequence:"
    separator: str = ";"
    suffix: str = (". Infer the user's preference distribution over the {k} latent categories "
                   "{first} to {last}. Top category:")
    id_template: str = "item_{item_id}"  # ids mode, and text mode's fallback
    max_items: int = Field(50, ge=1)  # the most recent training items kept
    max_tokens: int = Field(128, ge=8)  # whole prompt; the oldest items go first
    item_max_tokens: int = Field(16, ge=1)  # one item's piece is cut to this
    title_chars: int = Field(60, ge=8)  # text mode: a title is cut to this before tokenising


def item_strings(items, n_items: int, mode: Literal["text", "ids"], prompt: TslrecPrompt,
                 dataset_name: str = "dataset") -> list[str]:
    """One short string per item id (index = id; index 0 is unused): its title in text mode
    (items without one fall back to the id form), `item_<id>` in ids mode."""
    out = [prompt.id_template.format(item_id=i) for i in range(n_items + 1)]
    out[0] = ""
    if mode == "ids":
        return out
    from pipeline.prompts import PromptConfig, title_lookup

    titles = title_lookup(items, PromptConfig(user_title_chars=prompt.title_chars), dataset_name)
    for i in range(1, min(len(titles), n_items + 1)):
        if titles[i]:
            out[i] = titles[i]
    return out


class PromptTokens:
    """Token ids of TSLRec prompts for one tokenizer: `user(seq)` and `item(i)`."""

    def __init__(self, tokenizer, strings: list[str], prompt: TslrecPrompt, k: int) -> None:
        names = category_names(k)
        suffix = prompt.suffix.format(k=k, first=names[0], last=names[-1])

        def ids(texts: list[str], special: bool = False) -> list[list[int]]:
            return tokenizer(texts, add_special_tokens=special)["input_ids"]

        self.prefix = ids([prompt.prefix], special=True)[0]
        self.suffix = ids([suffix])[0]
        self.sep = ids([prompt.separator])[0] if prompt.separator else []
        # A leading space, as the piece reads inside the sentence (byte-level BPE tokenises
        # " Fargo" and "Fargo" differently).
        self.pieces = [p[: prompt.item_max_tokens] for p in ids([f" {s}" for s in strings])]
        self.max_items, self.max_tokens = prompt.max_items, prompt.max_tokens
        fixed = len(self.prefix) + len(self.suffix)
        if fixed + prompt.item_max_tokens > self.max_tokens:
            raise InputError(f"TSLRec prompt: prefix + suffix take {fixed} tokens; max_tokens "
                             f"{self.max_tokens} leaves no room for an item of {prompt.item_max_tokens}")

    def user(self, seq: np.ndarray) -> list[int]:
        """The prompt for a sequence of item ids (oldest first): the most recent items that
        fit in max_items and max_tokens, at least one."""
        budget = self.max_tokens - len(self.prefix) - len(self.suffix)
        kept: list[list[int]] = []
        for i in np.asarray(seq, dtype=np.int64)[::-1][: self.max_items]:
            piece = self.pieces[int(i)]
            cost = len(piece) + (len(self.sep) if kept else 0)
            if kept and cost > budget:
                break
            kept.append(piece)
            budget -= cost
        body: list[int] = []
        for n, piece in enumerate(reversed(kept)):
            body += (self.sep if n else []) + piece
        return self.prefix + body + self.suffix

    def item(self, i: int) -> list[int]:
        """The single-item prompt used for augmentation: the user prompt with one item."""
        return self.user(np.array([i]))


def instance_level_count(train: Sequence[np.ndarray]) -> int:
    """How many SFT examples an instance-level method would build (one per training
    interaction), against TSLRec's one per user."""
    return int(sum(len(s) for s in train))
