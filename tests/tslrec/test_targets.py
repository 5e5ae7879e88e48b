"""TSLRec targets and inputs: training-only histograms, one example per user, prompts."""

from __future__ import annotations

import numpy as np
import pytest
from tslrec_helpers import K, item_table

from pipeline.errors import InputError
from pipeline.methods.tslrec.data import (
    PromptTokens,
    TslrecPrompt,
    batch_schedule,
    category_histograms,
    instance_level_count,
    item_strings,
    latent_categories,
    reconstruction_metrics,
    split_users,
)


def test_histograms_count_training_items_only_and_sum_to_one(synthetic_split):
    cats = np.random.default_rng(0).integers(0, K, size=synthetic_split.n_items + 1)
    hist = category_histograms(synthetic_split.train, cats, K)
    assert hist.shape == (synthetic_split.n_users, K)
    assert np.allclose(hist.sum(axis=1), 1.0)
    u = 7
    train = synthetic_split.train[u]
    assert np.allclose(hist[u], np.bincount(cats[train], minlength=K) / len(train))
    # Relabel every item that appears only as a valid/test target: the histograms must not move.
    train_items = np.unique(np.concatenate(synthetic_split.train))
    held_items = np.setdiff1d(np.concatenate([synthetic_split.valid, synthetic_split.test]), train_items)
    assert len(held_items) > 0
    moved = cats.copy()
    moved[held_items] = (moved[held_items] + 1) % K
    assert np.array_equal(category_histograms(synthetic_split.train, moved, K), hist)


def test_hand_made_split_never_counts_valid_or_test():
    cats = np.array([-1, 0, 0, 1, 2, 2, 2])  # items 4, 5, 6 are category 2
    train = [np.array([1, 2, 3]), np.array([3])]  # valid/test would be items 4-6
    hist = category_histograms(train, cats, 3)
    assert np.allclose(hist, [[2 / 3, 1 / 3, 0], [0, 1, 0]])


def test_kmeans_categories_are_seeded_and_cover_every_item(synthetic_dataset):
    table = item_table(synthetic_dataset)
    a, b = latent_categories(table, K, seed=3), latent_categories(table, K, seed=3)
    assert np.array_equal(a.item_category, b.item_category) and a.inertia == b.inertia
    assert a.item_category[0] == -1 and len(a.item_category) == synthetic_dataset.n_items + 1
    assert a.item_category[1:].min() >= 0 and a.item_category.max() < K
    assert sum(a.sizes) == synthetic_dataset.n_items and a.inertia > 0
    with pytest.raises(InputError, match="k="):
        latent_categories(table, 1)


def test_one_sft_example_per_user():
    users, held = split_users(100, 0.1, seed=0)
    assert len(held) == 10 and not set(users) & set(held) and len(users) + len(held) == 100
    # One pass of the schedule is a permutation of the SFT users: each user exactly once.
    sched = batch_schedule(users, batch_size=9, steps=10, seed=0)
    assert sched.shape == (10, 9) and sorted(sched.ravel().tolist()) == sorted(users.tolist())
    assert not set(sched.ravel()) & set(held)
    longer = batch_schedule(users, batch_size=9, steps=15, seed=0)
    assert np.array_equal(longer[:10], sched)  # seeded passes: a longer run extends the same order
    assert instance_level_count([np.arange(5), np.arange(3)]) == 8


def test_metrics_by_hand():
    p = np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    q = np.array([[0.25, 0.75, 0.0], [0.2, 0.5, 0.3]])
    m = reconstruction_metrics(q, p)
    assert m["kl"] == pytest.approx((0.5 * np.log(4 / 3) + np.log(5)) / 2)
    assert m["top1"] == 0.5 and m["n"] == 2  # row 0: a tie in p, q picks one of them


def _tok(words):
    from tiny_models import word_tokenizer

    return word_tokenizer(words, cls=False)


def test_prompts_keep_the_most_recent_items_within_the_token_budget():
    strings = ["", "alpha one", "beta two", "gamma three", "delta four"]
    prompt = TslrecPrompt(prefix="seq", separator=";", suffix=". top", max_tokens=10,
                          item_max_tokens=2)
    tok = _tok(["seq ; . top", *strings[1:]])
    pt = PromptTokens(tok, strings, prompt, k=4)
    text = tok.decode(pt.user(np.array([1, 2, 3, 4])))
    # prefix 1 + suffix 2 tokens leave 7: "gamma three ; delta four" (5) fits, beta does not
    assert text.split() == ["seq", "gamma", "three", ";", "delta", "four", ".", "top"]
    assert tok.decode(pt.item(2)).split() == ["seq", "beta", "two", ".", "top"]
    few = PromptTokens(tok, strings, prompt.model_copy(update={"max_items": 1}), k=4)
    assert tok.decode(few.user(np.array([1, 2, 3, 4]))).split() == ["seq", "delta", "four", ".", "top"]
    with pytest.raises(InputError, match="max_tokens"):
        PromptTokens(tok, strings, prompt.model_copy(update={"max_tokens": 4}), k=4)


def test_item_strings_titles_or_ids(synthetic_dataset):
    n = synthetic_dataset.n_items
    text = item_strings(synthetic_dataset.items, n, "text", TslrecPrompt())
    ids = item_strings(synthetic_dataset.items, n, "ids", TslrecPrompt())
    assert len(text) == len(ids) == n + 1
    assert text[1].startswith(synthetic_dataset.items["title"][0][:20])
    assert ids[5] == "item_5"
