"""Sampled softmax: equal to the full softmax when the negatives are the whole catalogue,
accidental hits and seen items left out, trains a model, and the per-step memory guard."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from models.losses.next_item import softmax_ce
from models.losses.sampled_softmax import sampled_softmax_ce, seen_among
from models.srs.base import seen_before


def test_all_items_as_negatives_is_the_full_softmax():
    torch.manual_seed(0)
    n, d, m = 30, 8, 12
    table = torch.randn(n + 1, d)
    h = torch.randn(m, d)
    pos = torch.randint(1, n + 1, (m,))
    neg = torch.arange(1, n + 1)  # every item, so each row's target is an accidental hit
    got = sampled_softmax_ce(h, pos, table[pos], neg, table[neg])
    full = softmax_ce(h @ table.T, pos)
    assert torch.allclose(got, full, atol=1e-6)


def test_seen_negatives_are_masked_like_mask_seen():
    torch.manual_seed(1)
    n, d = 20, 6
    seq = torch.tensor([[0, 0, 3, 5, 7, 3], [2, 4, 6, 8, 10, 12]])  # [B, T]
    target = torch.tensor([[0, 0, 5, 7, 3, 9], [4, 6, 8, 10, 12, 14]])
    valid = target > 0
    table = torch.randn(n + 1, d)
    h = torch.randn(2, 6, d)[valid]
    pos = target[valid]
    neg = torch.arange(1, n + 1)
    seen = seen_among(seq, neg)[valid]  # [M, K]
    assert torch.equal(seen, seen_before(seq, n)[valid][:, 1:])
    got = sampled_softmax_ce(h, pos, table[pos], neg, table[neg], seen)
    full = softmax_ce(h @ table.T, pos, seen_before(seq, n)[valid])
    assert torch.allclose(got, full, atol=1e-6)
    # fewer negatives: the loss is the CE of [target, kept negatives] only
    few = torch.tensor([3, 9, 11])
    got = sampled_softmax_ce(h, pos, table[pos], few, table[few], None)
    logits = torch.cat([(h * table[pos]).sum(-1, keepdim=True), h @ table[few].T], 1)
    logits[:, 1:][few[None, :] == pos[:, None]] = -torch.inf
    assert torch.allclose(got, F.cross_entropy(logits, torch.zeros(len(pos), dtype=torch.long)))


def _train(split, path, **over):
    from pipeline.config import load_train_config
    from pipeline.train import train_srs

    cfg = load_train_config("sasrec", {"epochs": 6, "model.dim": 16, "model.max_len": 20,
                                       "model.dropout": 0.0, **over})
    return train_srs(split, cfg, path, progress=False)


def test_sampled_over_the_whole_catalogue_trains_like_the_full_softmax(synthetic_split, tmp_path):
    """K ≥ N: every item is a negative (no RNG drawn), the ID table is sparse and on
    SparseAdam, which equals Adam when every row is touched: the full softmax's numbers."""
    from pipeline.evaluate import pick

    full = _train(synthetic_split, tmp_path / "ce")
    sampled = _train(synthetic_split, tmp_path / "s", **{"model.loss": "sampled",
                                                          "model.negatives": 10_000})
    assert pick(full.valid_rows) > 0.02  # random: ≈ 0.007
    assert pick(sampled.valid_rows) == pytest.approx(pick(full.valid_rows), abs=2e-3)


@pytest.mark.parametrize("over", [{"model.loss": "sampled", "model.negatives": 100},
                                  {"model.loss": "sampled", "model.negatives": 100, "model.sampler": "mixed"},
                                  {"model.loss": "sampled", "model.negatives": 100, "model.sampler": "popularity"},
                                  {"model.loss": "gbce", "model.negatives": 100}])
def test_few_negatives_still_learn(synthetic_split, tmp_path, over):
    from pipeline.evaluate import pick

    # a random ranking of the 500 items gives full NDCG@10 ≈ 0.007
    assert pick(_train(synthetic_split, tmp_path / "run", epochs=10, **over).valid_rows) > 0.012


def test_uniform_negatives_are_distinct_up_to_16k_and_the_catalogue_beyond_k():
    from pipeline.negatives import SharedNegatives

    gen = torch.Generator().manual_seed(0)
    target = torch.tensor([[0, 3, 4]])
    every = SharedNegatives(50, 80, "uniform").draw(gen, target)
    assert torch.equal(every["shared_negative"], torch.arange(1, 51))  # K ≥ N: all of them
    few = SharedNegatives(1000, 100, "uniform").draw(gen, target)["shared_negative"]
    assert len(few.unique()) == 100 and int(few.min()) >= 1 and int(few.max()) <= 1000
    assert torch.equal(SharedNegatives(1000, 100, "uniform").draw(gen, target)["shared_log_q"],
                       torch.zeros(100))


def test_popularity_negatives_carry_their_logq_correction():
    import numpy as np

    from pipeline.negatives import SharedNegatives

    counts = np.array([0, 97, 1, 1, 1], dtype=np.int64)  # smoothed (+1): item 1 is 98/104 of the mass
    draw = SharedNegatives(4, 2000, "popularity", counts).draw(torch.Generator().manual_seed(0),
                                                               torch.tensor([[1, 2]]))
    neg, log_q = draw["shared_negative"], draw["shared_log_q"]
    assert float((neg == 1).float().mean()) == pytest.approx(98 / 104, abs=0.02)
    # log(N·q): item 1 is sampled 4·98/104 times as often as under uniform sampling
    assert float(log_q[neg == 1][0]) == pytest.approx(np.log(4 * 98 / 104), rel=1e-5)
    mixed = SharedNegatives(4, 2, "mixed", counts).draw(torch.Generator().manual_seed(0),
                                                        torch.tensor([[0, 3, 3, 2]]))
    assert {2, 3} <= set(mixed["shared_negative"][2:].tolist())  # the batch's targets


def test_gbce_with_t_zero_is_plain_bce_over_the_negatives():
    from models.losses.sampled_softmax import gbce

    torch.manual_seed(2)
    h, table = torch.randn(5, 4), torch.randn(11, 4)
    pos, neg = torch.randint(1, 11, (5,)), torch.tensor([1, 2, 3])
    got = gbce(h, pos, table[pos], neg, table[neg], n_items=10, t=0.0)
    pos_logit, neg_logit = (h * table[pos]).sum(-1), h @ table[neg].T
    hit = neg[None] == pos[:, None]
    want = F.softplus(-pos_logit) + F.softplus(neg_logit).masked_fill(hit, 0).sum(1)
    assert torch.allclose(got, want.mean(), atol=1e-6)


def test_auto_is_the_full_softmax_for_small_catalogues_and_sampled_above():
    from models.srs.base import AUTO_SAMPLED_ABOVE, SRSConfig, resolve_loss

    cfg = SRSConfig(loss="auto")
    assert resolve_loss(cfg, 1_682).loss == "ce"
    assert resolve_loss(cfg, AUTO_SAMPLED_ABOVE + 1).loss == "sampled"
    assert resolve_loss(SRSConfig(loss="bce"), 10**7).loss == "bce"


def test_the_memory_guard_names_the_sampled_loss():
    from pipeline.config import load_train_config
    from pipeline.errors import InputError
    from pipeline.requests import check_step_memory

    cfg = load_train_config("sasrec", {"batch_size": 256})
    check_step_memory(cfg, 1_000, available=8 << 30)  # small catalogue: fine
    with pytest.raises(InputError, match=r"ce loss needs ~\d+\.\d GiB .* model\.loss=sampled"):
        check_step_memory(cfg, 1_000_000, available=8 << 30)
    sampled = load_train_config("sasrec", {"batch_size": 256, "model.loss": "sampled"})
    check_step_memory(sampled, 1_000_000, available=8 << 30)  # K=1000 negatives: fits
