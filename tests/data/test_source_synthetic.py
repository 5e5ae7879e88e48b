"""The synthetic generator: deterministic, and its latent categories drive text and order."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from pipeline.data.config import DataConfig, resolve_dataset
from pipeline.data.prepare import prepare_dataset
from pipeline.data.sources.synthetic import item_categories, make_synthetic
from pipeline.errors import InputError


def test_same_seed_same_output() -> None:
    a, b = make_synthetic(seed=3), make_synthetic(seed=3)
    assert a.interactions.equals(b.interactions) and a.items.equals(b.items)
    assert item_categories(a) == item_categories(b)
    assert not make_synthetic(seed=4).interactions.equals(a.interactions)


def test_defaults_are_fast_and_shaped() -> None:
    start = time.perf_counter()
    raw = make_synthetic()
    assert time.perf_counter() - start < 0.5
    lengths = raw.interactions.group_by("user").len()["len"]
    assert raw.interactions["user"].n_unique() == 200
    assert lengths.min() >= 5 and lengths.max() <= 30
    assert raw.interactions.unique(["user", "item"]).height == raw.interactions.height
    assert set(item_categories(raw).values()) == set(range(8))
    counts = np.sort(raw.interactions.group_by("item").len()["len"].to_numpy())[::-1]
    assert counts[: len(counts) // 5].sum() > 0.45 * counts.sum()  # long tail


def _words(row: dict) -> list[str]:
    return f"{row['title']} {row['brand']}".lower().split()


def test_text_predicts_category() -> None:
    raw = make_synthetic(items=800, categories=14, seed=1)  # beyond the named themes too
    truth = item_categories(raw)
    rows = raw.items.to_dicts()
    train, test = rows[::2], rows[1::2]
    votes: dict[str, Counter] = defaultdict(Counter)
    for row in train:
        for w in _words(row):
            votes[w][truth[row["item"]]] += 1
    hits = 0
    for row in test:
        tally = sum((votes[w] for w in _words(row) if w in votes), Counter())
        hits += bool(tally) and tally.most_common(1)[0][0] == truth[row["item"]]
    assert hits / len(test) > 0.9


def test_sequences_follow_categories() -> None:
    raw = make_synthetic(seed=2)
    truth = item_categories(raw)
    df = raw.interactions.sort("user", "timestamp")
    cats = np.array([truth[i] for i in df["item"]])
    same_user = df["user"].to_numpy()[1:] == df["user"].to_numpy()[:-1]
    same_cat = (cats[1:] == cats[:-1])[same_user]
    assert same_cat.mean() > 0.7  # chance would be ~1/8


def test_prepared_through_the_registry(tmp_path: Path) -> None:
    cfg = DataConfig(source="synthetic", synthetic={"users": 50, "items": 80, "seed": 5})
    ds = prepare_dataset(cfg, tmp_path)
    raw = make_synthetic(users=50, items=80, seed=5)
    assert ds.n_users == 50
    assert set(ds.items["raw_id"]) <= set(item_categories(raw))
    assert ds.text_columns == ["title", "brand", "categories"]
    assert resolve_dataset("synthetic").source == "synthetic"


def test_bad_arguments() -> None:
    with pytest.raises(InputError, match=r"unknown argument\(s\) \['user'\]"):
        make_synthetic(user=3)
    with pytest.raises(InputError, match="min_len=9 > max_len=4"):
        make_synthetic(min_len=9, max_len=4)
