"""Backbone contract: shapes, padding invariance, causality, gradients."""

from __future__ import annotations

import pytest
import torch

from models.item_emb import IdEmbedding
from models.srs import BACKBONES, SRSConfig

N_ITEMS = 50


def _model(name: str, **kw):
    cfg = SRSConfig(backbone=name, dim=16, layers=2, heads=2, dropout=0.0, max_len=12, **kw)
    torch.manual_seed(0)
    return BACKBONES[name](cfg, IdEmbedding(N_ITEMS, 16)).eval()


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_contract_shapes(name):
    m = _model(name)
    seq = torch.tensor([[0, 0, 3, 4, 5], [1, 2, 3, 4, 5]])
    assert m.encode(seq).shape == (2, 5, 16)
    user = m(seq)
    assert user.shape == (2, 16)
    assert m.score_all(user).shape == (2, N_ITEMS + 1)


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_extra_left_padding_changes_nothing(name):
    m = _model(name)
    short = torch.tensor([[7, 8, 9]])
    padded = torch.tensor([[0, 0, 0, 0, 7, 8, 9]])
    assert torch.allclose(m(short), m(padded), atol=1e-5)


def test_sasrec_causal_switch():
    seq = torch.tensor([[1, 2, 3, 4]])
    changed = torch.tensor([[1, 2, 3, 9]])  # only the last item differs
    causal = _model("sasrec")
    assert torch.allclose(causal.encode(seq)[:, :3], causal.encode(changed)[:, :3], atol=1e-6)
    bidirectional = _model("sasrec", causal=False)
    assert not torch.allclose(bidirectional.encode(seq)[:, :3], bidirectional.encode(changed)[:, :3])


@pytest.mark.parametrize("loss", ["ce", "bce"])
@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_loss_is_finite_and_reaches_every_parameter_in_use(name, loss):
    m = _model(name, loss=loss).train()
    inp = torch.tensor([[0, 1, 2, 3], [4, 5, 6, 7]])
    target = torch.tensor([[0, 2, 3, 4], [5, 6, 7, 8]])
    if name == "bert4rec":
        inp = torch.tensor([[0, 1, N_ITEMS + 1, 3], [4, N_ITEMS + 1, 6, 7]])
        target = torch.tensor([[0, 0, 2, 0], [0, 5, 0, 0]])
    batch = {"input": inp, "target": target, "negative": torch.randint(1, N_ITEMS, (2, 4))}
    value = m.loss(batch)
    assert torch.isfinite(value) and value > 0
    value.backward()
    assert m.item_emb.table.weight.grad is not None
    assert m.item_emb.table.weight.grad[0].abs().sum() == 0  # padding row stays untouched


def test_ce_loss_matches_hand_computation():
    m = _model("sasrec")
    hidden = torch.randn(1, 2, 16)
    batch = {"input": torch.tensor([[1, 2]]), "target": torch.tensor([[0, 3]])}
    table = m.item_emb.scoring_table()
    logits = hidden[0, 1] @ table[1:].T  # padding excluded from the softmax
    expected = -torch.log_softmax(logits, 0)[2]
    assert torch.allclose(m.loss_from_hidden(hidden, batch), expected, atol=1e-5)


def test_mask_seen_leaves_history_out_of_the_softmax():
    from models.srs.base import seen_before

    seq = torch.tensor([[0, 3, 5, 3]])
    seen = seen_before(seq, n_items=6)
    assert seen[0, 1].nonzero().flatten().tolist() == [3]
    assert seen[0, 3].nonzero().flatten().tolist() == [3, 5]
    m = _model("sasrec", mask_seen=True)
    hidden = torch.randn(1, 2, 16)
    batch = {"input": torch.tensor([[2, 4]]), "target": torch.tensor([[4, 2]])}
    table = m.item_emb.scoring_table()  # [N+1, 16]

    def nll(h, target, out):  # softmax over items 1..N except `out`
        keep = [i for i in range(1, N_ITEMS + 1) if i not in out]
        logits = h @ table[keep].T
        return -torch.log_softmax(logits, 0)[keep.index(target)]

    # position 0: history {2}, target 4; position 1: history {2, 4}, target 2 (a repeat stays in).
    expected = (nll(hidden[0, 0], 4, {2}) + nll(hidden[0, 1], 2, {4})) / 2
    assert torch.allclose(m.loss_from_hidden(hidden, batch), expected, atol=1e-5)


def test_bert4rec_mask_seen_leaves_the_whole_row_out_but_each_target():
    # Row 7 5 [MASK] 3 with the masked item 6 (and 5 masked too, kept as itself): every item
    # of the unmasked row is history to both targets, except the target itself.
    m = _model("bert4rec", mask_seen=True)
    mask = N_ITEMS + 1
    batch = {"input": torch.tensor([[7, 5, mask, 3]]), "target": torch.tensor([[0, 5, 6, 0]])}
    seen = m.seen_items(batch)
    assert seen.shape == (1, 4, N_ITEMS + 1)
    assert seen[0, 2].nonzero().flatten().tolist() == [3, 5, 6, 7]  # the [MASK] id is never an item
    hidden = torch.randn(1, 4, 16)
    table = m.item_emb.scoring_table()

    def nll(h, target, out):
        keep = [i for i in range(1, N_ITEMS + 1) if i not in out]
        return -torch.log_softmax(h @ table[keep].T, 0)[keep.index(target)]

    expected = (nll(hidden[0, 1], 5, {3, 6, 7}) + nll(hidden[0, 2], 6, {3, 5, 7})) / 2
    assert torch.allclose(m.loss_from_hidden(hidden, batch), expected, atol=1e-5)
    among = torch.tensor([6, 9, 7])  # the sampled losses' shared negatives
    assert m.seen_items(batch, among)[0, 1].tolist() == [True, False, True]
