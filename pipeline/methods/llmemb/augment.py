"""SCFT's attribute-level augmentation and its held-out retrieval check (METHODS.md §4.3).

An item's "key is value" pairs are shuffled and cut independently for two views, so each
view keeps a random n − ⌊ratio·n⌋ of them in random order; the instruction line stays.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pipeline.prompts import Pairs, render_item

if TYPE_CHECKING:
    from pipeline.methods.llmemb.config import ScftConfig


def augment_views(pairs: Pairs, ratio: float, rng: np.random.Generator) -> tuple[Pairs, Pairs]:
    """Two views of one item: each an independent shuffle keeping n − ⌊ratio·n⌋ pairs."""
    keep = len(pairs) - int(np.floor(ratio * len(pairs)))
    views = []
    for _ in range(2):
        order = rng.permutation(len(pairs))[:keep]
        views.append([pairs[i] for i in order])
    return views[0], views[1]


def view_texts(ids: np.ndarray, pairs: list[Pairs], cfg: ScftConfig, seed: int) -> tuple[list[str], list[str]]:
    """(view-A texts, view-B texts) for `ids`, seeded: the same call gives the same views."""
    rng = np.random.default_rng(seed)
    a, b = [], []
    for i, p in zip(ids, pairs, strict=True):
        va, vb = augment_views(p, cfg.drop_ratio, rng)
        a.append(render_item(va, cfg.prompt, int(i)))
        b.append(render_item(vb, cfg.prompt, int(i)))
    return a, b


def split_items(n: int, cfg: ScftConfig) -> tuple[np.ndarray, np.ndarray]:
    """(train positions, held-out positions) into the item list, seeded."""
    perm = np.random.default_rng(cfg.seed).permutation(n)
    n_out = round(cfg.heldout_fraction * n)
    return np.sort(perm[n_out:]), np.sort(perm[:n_out])


def recall_at_1(a: np.ndarray, b: np.ndarray) -> float:
    """Share of rows of `a` whose nearest row of `b` (cosine after centring both on their
    joint mean, against the anisotropy of raw states) is the same item."""
    mean = np.concatenate([a, b]).mean(axis=0)
    a, b = a - mean, b - mean
    a /= np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b /= np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return float(((a @ b.T).argmax(axis=1) == np.arange(len(a))).mean())
