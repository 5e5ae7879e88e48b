"""E4SRec module: what trains, what the scores cover, one forward per batch, new items."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

HIST = torch.tensor([[0, 0, 3, 4, 9], [1, 2, 3, 4, 5], [0, 0, 0, 0, 7]])  # [B, L], 0 = pad


def test_only_lora_projection_and_head_get_gradients(make_model):
    model = make_model()
    model.train()
    model.loss(HIST, torch.tensor([1, 6, 8])).backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert trainable, "nothing trains"
    for name in trainable:
        assert "lora_" in name or name.startswith(("input_proj.", "head.")), name
    assert {"input_proj.weight", "input_proj.bias", "head.rows"} <= set(trainable)
    assert sum("lora_" in n for n in trainable) == 2 * 3 * 2  # A, B × gate/up/down × 2 layers
    # every trainable part got a real gradient (LoRA B starts at zero, so its A gets none
    # on the first step: B's gradient is what must be nonzero)
    for name, p in trainable.items():
        if "lora_A" not in name:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
    # the ID table, the LLM's token embeddings and every base weight have no gradient
    frozen = [(n, p) for n, p in model.named_parameters() if not p.requires_grad]
    assert any(n == "item_ids.weight" for n, _ in frozen)
    assert any("embed_tokens" in n for n, _ in frozen)
    assert len(frozen) > 10
    for name, p in frozen:
        assert p.grad is None, name


def test_scores_cover_exactly_the_catalogue(make_model):
    n_items = 30
    model = make_model(n_items)
    with torch.no_grad():
        scores = model.score(HIST)
    assert scores.shape == (3, n_items + 1) and scores.dtype == torch.float32
    assert torch.isneginf(scores[:, 0]).all()
    assert torch.isfinite(scores[:, 1:]).all()
    assert (scores.argmax(1) > 0).all()
    assert (scores.topk(n_items, dim=1).indices > 0).all()  # pad is last, never recommended


def test_loss_is_softmax_over_items_without_pad(make_model):
    model = make_model()
    target = torch.tensor([1, 6, 8])
    with torch.no_grad():
        logits = model.head(model(HIST), model.item_ids.weight)  # raw [B, N+1]
        expected = F.cross_entropy(logits[:, 1:], target - 1)
        assert torch.allclose(model.loss(HIST, target), expected, atol=1e-5)
        # mask_seen leaves history items (not the target) out of the softmax
        keep = torch.ones_like(logits, dtype=torch.bool)
        keep[:, 0] = False
        for b, row in enumerate(HIST):
            keep[b, row[row > 0]] = False
        keep[torch.arange(3), target] = True
        masked = logits.masked_fill(~keep, float("-inf"))
        assert torch.allclose(model.loss(HIST, target, mask_seen=True),
                              F.cross_entropy(masked, target), atol=1e-5)
    with pytest.raises(ValueError):
        model.loss(HIST, torch.tensor([0, 1, 2]))


def test_scores_do_not_depend_on_batch_neighbours_or_padding(make_model):
    model = make_model()
    with torch.no_grad():
        together = model.score(HIST)
        alone = model.score(torch.tensor([[7]]))
        wide = model.score(torch.tensor([[0, 0, 0, 0, 0, 0, 0, 7]]))
    assert torch.allclose(together[2, 1:], alone[0, 1:], atol=1e-5)
    assert torch.allclose(wide[0, 1:], alone[0, 1:], atol=1e-5)


def test_history_is_capped(make_model):
    model = make_model(max_history=3)
    with torch.no_grad():
        long = model.score(torch.tensor([[1, 2, 3, 4, 5, 6]]))
        last3 = model.score(torch.tensor([[4, 5, 6]]))
        other = model.score(torch.tensor([[1, 5, 6]]))
    assert torch.allclose(long[0, 1:], last3[0, 1:], atol=1e-5)
    assert not torch.allclose(long[0, 1:], other[0, 1:], atol=1e-5)


@pytest.mark.parametrize("share_prefix", [True, False])
def test_a_batch_of_users_is_scored_in_one_forward_pass(make_model, synthetic_split, share_prefix):
    """One LLM forward over all B users per batch; with a shared prefix, plus one batch-1
    pass over the constant instruction prefix whose keys/values every user reuses."""
    from pipeline.evaluate import EvalConfig, evaluate
    from pipeline.methods.e4srec.train import e4srec_scorer

    model = make_model(synthetic_split.n_items, share_prefix=share_prefix).eval()
    rows_per_call: list[int] = []
    hook = model.base_model.register_forward_hook(
        lambda mod, args, kwargs, out: rows_per_call.append(kwargs["inputs_embeds"].shape[0]),
        with_kwargs=True)
    scorer = e4srec_scorer(model, bf16=False)
    users = np.arange(1, 51)
    scores = scorer(users, [synthetic_split.train[u - 1] for u in users])
    assert scores.shape == (50, synthetic_split.n_items + 1)
    assert rows_per_call == ([1, 50] if share_prefix else [50])
    rows_per_call.clear()
    rows = evaluate(scorer, synthetic_split, "valid", EvalConfig(batch_size=64))
    hook.remove()
    full_batches = [r for r in rows_per_call if r > 1]
    assert full_batches == [64, 64, 64, 8]  # 200 users -> 4 forwards, every user inside one
    assert len(rows_per_call) == (8 if share_prefix else 4)
    assert {r["protocol"] for r in rows} == {"full", "s100"}


def test_shared_prefix_gives_the_same_scores(make_model):
    # no LoRA dropout: its random masks would differ between the two layouts
    shared = make_model(share_prefix=True, lora_dropout=0.0)
    plain = make_model(share_prefix=False, lora_dropout=0.0)
    plain.load_trainable_state_dict(shared.trainable_state_dict())
    with torch.no_grad():
        assert torch.allclose(shared.score(HIST)[:, 1:], plain.score(HIST)[:, 1:], atol=1e-5)
    # and the same gradients reach the same parameters
    shared.train(), plain.train()
    shared.loss(HIST, torch.tensor([1, 6, 8])).backward()
    plain.loss(HIST, torch.tensor([1, 6, 8])).backward()
    grads = dict(plain.named_parameters())
    for name, p in shared.named_parameters():
        if p.grad is not None:
            assert torch.allclose(p.grad, grads[name].grad, atol=1e-5), name


def test_new_items_leave_existing_scores_unchanged(make_model):
    n_items = 30
    model = make_model(n_items)
    with torch.no_grad():
        before = model.score(HIST)
        new_ids = model.add_items(torch.randn(4, 8), head_rows=torch.randn(4, 32))
        after = model.score(HIST)
    assert list(new_ids) == [31, 32, 33, 34] and model.n_items == 34
    assert after.shape == (3, 35)
    # equal up to float rounding (a wider head matmul may block its sums differently)
    assert torch.allclose(after[:, :n_items + 1], before, rtol=0, atol=1e-6)
    assert torch.isneginf(after[:, 0]).all()
    assert torch.isfinite(after[:, n_items + 1:]).all()
    # the new items can be read in a history and trained (their head rows get gradients)
    model.train()
    model.loss(torch.tensor([[1, 31, 32]]), torch.tensor([33])).backward()
    assert model.head.rows.grad[33].abs().sum() > 0
    assert not model.item_ids.weight.requires_grad
    # without head rows, new items start at the mean existing row
    with torch.no_grad():
        model.add_items(torch.randn(1, 8))
        assert torch.allclose(model.head_weight()[35], model.head_weight()[1:35].mean(0))
        assert torch.allclose(model.score(HIST)[:, :n_items + 1], before, rtol=0, atol=1e-6)


def test_factorized_head_scores_new_items_from_their_embeddings(make_model):
    n_items = 30
    model = make_model(n_items, head="id_factorized")
    names = set(model.trainable_names())
    assert {"head.rows", "head.from_ids.weight"} <= names and "item_ids.weight" not in names
    with torch.no_grad():
        assert torch.equal(model.head.rows, torch.zeros_like(model.head.rows))  # R starts at 0
        before = model.score(HIST)
        new = torch.randn(2, 8)
        model.add_items(new)
        after = model.score(HIST)
        hidden = model(HIST)
    assert torch.allclose(after[:, :n_items + 1], before, rtol=0, atol=1e-6)
    expected = hidden @ model.head.from_ids(new).T  # [B, 2]: scored from the embedding alone
    assert torch.allclose(after[:, n_items + 1:], expected, atol=1e-5)
    model.train()
    model.loss(HIST, torch.tensor([1, 31, 32])).backward()
    assert model.head.from_ids.weight.grad.abs().sum() > 0 and model.item_ids.weight.grad is None
