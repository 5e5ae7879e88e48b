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


def test_a_sasrec_trains_with_sampled_softmax(synthetic_split, tmp_path):
    from pipeline.config import load_train_config
    from pipeline.evaluate import pick
    from pipeline.train import train_srs

    cfg = load_train_config("sasrec", {"epochs": 10, "model.dim": 16, "model.max_len": 20,
                                       "model.loss": "sampled", "model.negatives": 100})
    result = train_srs(synthetic_split, cfg, tmp_path / "run", progress=False)
    # a random ranking of the 500 items gives full NDCG@10 ≈ 0.007 (measured: full softmax
    # 0.062, sampled 0.034 after 15 epochs)
    assert pick(result.valid_rows) > 0.02


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
