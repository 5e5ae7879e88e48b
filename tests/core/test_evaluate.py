"""The evaluation harness against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pipeline.evaluate import (
    EvalConfig,
    Groups,
    evaluate,
    full_ranks,
    metrics_from_ranks,
    pick,
    sampled_ranks,
)
from pipeline.split import Split


def test_metrics_from_hand_computed_ranks():
    ranks = np.array([0, 1, 4, 10, 25])
    m = metrics_from_ranks(ranks, ks=(5, 10, 20), mrr_k=10)
    assert m["hr@5"] == pytest.approx(3 / 5)
    assert m["hr@10"] == pytest.approx(3 / 5)
    assert m["hr@20"] == pytest.approx(4 / 5)
    assert m["ndcg@5"] == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(6)) / 5)
    assert m["ndcg@20"] == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(6) + 1 / math.log2(12)) / 5)
    assert m["mrr@10"] == pytest.approx((1 + 1 / 2 + 1 / 5) / 5)


def test_ties_are_broken_pessimistically():
    # items 0..5; target 3 ties with items 1 and 4; item 2 is higher.
    scores = torch.tensor([[0.0, 1.0, 2.0, 1.0, 1.0, 0.5]])
    target = torch.tensor([3])
    assert full_ranks(scores, target, None).item() == 3  # 2, 1, 4 all rank above it
    assert full_ranks(scores, target, [np.array([1, 2])]).item() == 1  # history masked
    # A collapsed model (all scores equal) ranks the target last, not first.
    flat = torch.zeros(1, 6)
    assert full_ranks(flat, target, None).item() == 4  # items 1,2,4,5 (0 is padding)
    assert sampled_ranks(flat, target, torch.tensor([[1, 2, 5]])).item() == 3


def test_padding_never_counts_and_repeat_target_is_still_ranked():
    scores = torch.tensor([[9.0, 1.0, 3.0, 2.0]])
    assert full_ranks(scores, torch.tensor([3]), None).item() == 1  # only item 2 above
    # The target itself sits in the history (repeat consumption): its score still counts.
    assert full_ranks(scores, torch.tensor([2]), [np.array([2, 3])]).item() == 0


def _toy_split() -> Split:
    train = [np.array([1, 2, 3]), np.array([1, 2]), np.array([1, 4, 5, 2])]
    return Split(train=train, valid=np.array([4, 3, 3]), test=np.array([5, 5, 6]),
                 n_items=7, negatives_of=lambda: np.array([[6, 7], [6, 7], [3, 7]]))


def test_groups_by_training_popularity_and_length():
    split = _toy_split()
    g = Groups.from_split(split, EvalConfig(head_item_frac=0.2, head_user_frac=0.2))
    # popularity: item1=3, item2=3, item3=1, item4=1, item5=1 → ceil(0.2*7)=2 head items.
    assert g.head_items.tolist() == [False, True, True, False, False, False, False, False]
    assert g.head_users.tolist() == [False, False, True]  # longest training history
    g2 = Groups.from_split(split, EvalConfig(item_pop_threshold=1, user_len_threshold=3))
    assert g2.head_items[1:6].all() and not g2.head_items[6:].any()
    assert g2.head_users.tolist() == [True, False, True]


def test_evaluate_rows_carry_protocol_and_group():
    split = _toy_split()

    def oracle(users, inputs):  # scores the test item highest
        s = torch.zeros(len(users), 8)
        s[torch.arange(len(users)), torch.from_numpy(split.test[users - 1])] = 1.0
        return s

    rows = evaluate(oracle, split, "test", EvalConfig())
    assert pick(rows, "full", "overall", "ndcg@10") == 1.0
    assert pick(rows, "s2", "overall", "hr@5") == 1.0
    groups = {r["group"] for r in rows}
    # No test target is a head item here, so that group has no rows (never NaN rows).
    assert groups == {"overall", "tail_item", "head_user", "tail_user"}
    assert {r["n_users"] for r in rows if r["group"] == "tail_item"} == {3}
    assert all(r["protocol"] in {"full", "s2"} for r in rows)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")],
                         ids=["nan", "inf", "-inf"])
def test_non_finite_scores_are_refused_never_ranked(bad):
    """A NaN target score compares false with everything and would rank first (a diverged
    model reported HR=NDCG=1.0): the harness refuses instead of ranking."""
    from pipeline.errors import DivergedError

    split = _toy_split()

    def diverged(users, inputs):
        s = torch.zeros(len(users), 8)
        s[1, 3] = bad
        return s

    with pytest.raises(DivergedError, match=r"NaN or infinite for 1 users \(first: user 2\)"):
        evaluate(diverged, split, "test", EvalConfig())
    padding_only = lambda users, inputs: torch.zeros(len(users), 8).index_fill_(  # noqa: E731
        1, torch.tensor([0]), bad)
    assert evaluate(padding_only, split, "test", EvalConfig())  # column 0 is padding


def test_item_chunked_ranking_equals_the_dense_path(synthetic_split, monkeypatch):
    """A catalogue too large for [B, N+1] scores is ranked item chunk by item chunk; the ranks
    (full with history masked, and sampled) are those of the dense path."""
    import pipeline.evaluate as ev
    from models.item_emb import IdEmbedding
    from models.srs.base import SRSConfig
    from models.srs.registry import BACKBONES
    from pipeline.evaluate import EvalConfig, Factored, factored_ranks, rank_users
    from pipeline.train import model_scorer

    torch.manual_seed(0)
    cfg = SRSConfig(dim=16, max_len=20)
    model = BACKBONES["sasrec"](cfg, IdEmbedding(synthetic_split.n_items, 16)).eval()
    scorer = model_scorer(model)
    assert isinstance(scorer, Factored)
    dense = rank_users(scorer, synthetic_split, "test", EvalConfig())
    monkeypatch.setattr(ev, "DENSE_LIMIT_BYTES", 0)  # every batch takes the chunked path
    monkeypatch.setattr(ev, "ITEM_CHUNK", 37)  # chunks that split targets and histories
    chunked = rank_users(scorer, synthetic_split, "test", EvalConfig())
    assert dense.keys() == chunked.keys()
    for protocol in dense:
        assert np.array_equal(dense[protocol], chunked[protocol]), protocol
    # a NaN table is refused in the chunked path too
    with pytest.raises(ev.DivergedError):
        user = torch.ones(2, 16)
        table = torch.full((synthetic_split.n_items + 1, 16), float("nan"))
        factored_ranks(user, table, torch.tensor([1, 2]), None, torch.tensor([[3], [4]]))


def test_window_len_and_window_batches():
    from models.sequences import window_batches, window_len

    assert [window_len(n, 200) for n in (0, 1, 2, 3, 5, 64, 65, 200, 900)] == \
        [1, 1, 2, 4, 8, 64, 128, 200, 200]
    lengths = np.array([5, 1, 300, 7, 64, 65, 2, 6, 8])
    batches = window_batches(lengths, 2)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    assert all(1 <= len(b) <= 2 for b in batches)
    for b in batches:  # one window per batch, whatever max_len
        assert len({window_len(int(n), 10**6) for n in lengths[b]}) == 1
    assert [b.tolist() for b in batches][:3] == [[1], [6], [0, 3]]  # shortest windows first


@pytest.mark.parametrize("name", ["sasrec", "gru4rec", "bert4rec"])
def test_windowed_evaluation_equals_the_fixed_window(synthetic_split, name):
    """Each history is encoded padded to its own window instead of max_len: the user
    vectors match the fixed-window ones, and every rank is the same."""
    from models.item_emb import IdEmbedding
    from models.sequences import pad_left
    from models.srs.base import SRSConfig
    from models.srs.registry import BACKBONES
    from pipeline.evaluate import EvalConfig, rank_users
    from pipeline.train import model_scorer

    torch.manual_seed(0)
    cfg = SRSConfig(backbone=name, dim=16, max_len=64, heads=2)
    model = BACKBONES[name](cfg, IdEmbedding(synthetic_split.n_items, 16)).eval()

    def fixed(users, inputs):
        with torch.no_grad():
            return model.score_all(model(pad_left(inputs, cfg.max_len)))

    inputs = synthetic_split.inputs("test")
    some = [inputs[i] for i in range(8)]
    assert {len(s) for s in some} != {cfg.max_len}  # the windows differ from max_len
    windowed = model_scorer(model).users(np.arange(1, 9), some)
    with torch.no_grad():
        full = model(pad_left(some, cfg.max_len))
    torch.testing.assert_close(windowed, full, atol=1e-5, rtol=1e-5)
    a = rank_users(model_scorer(model), synthetic_split, "test", EvalConfig(batch_size=7))
    b = rank_users(fixed, synthetic_split, "test", EvalConfig(batch_size=64))
    for protocol in a:
        assert np.array_equal(a[protocol], b[protocol]), protocol
