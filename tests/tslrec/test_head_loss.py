"""The K-way head and KL loss by hand, and what the SFT step trains."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from models.losses import CategoryKLLoss, kl_rows
from models.tslrec import CategoryHead, VerbalizerHead


def test_kl_loss_against_hand_computed_values():
    logits = torch.tensor([[0.0, math.log(3.0)], [0.0, math.log(3.0)]])  # q = [0.25, 0.75]
    target = torch.tensor([[0.5, 0.5], [1.0, 0.0]])
    rows = kl_rows(logits, target)
    assert rows[0].item() == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(2 / 3), abs=1e-6)
    assert rows[1].item() == pytest.approx(math.log(4), abs=1e-6)  # 0·log 0 adds nothing
    loss = CategoryKLLoss()
    z = logits.clone().requires_grad_(True)
    value = loss(z, target)
    assert value.item() == pytest.approx((0.5 * math.log(4 / 3) + math.log(4)) / 2, abs=1e-6)
    value.backward()  # d KL / d z = (softmax(z) − p) / B
    expected = (torch.tensor([[0.25, 0.75], [0.25, 0.75]]) - target) / 2
    assert torch.allclose(z.grad, expected, atol=1e-6)
    assert loss(target.log().clamp(min=-30), target).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError):
        loss(torch.zeros(2, 3), torch.zeros(2, 2))


def test_head_starts_at_the_prior_and_verbalizer_reads_label_rows():
    prior = torch.tensor([0.1, 0.2, 0.7])
    head = CategoryHead(5, 3, prior)
    probs = torch.softmax(head(torch.randn(4, 5)), dim=-1)
    assert torch.allclose(probs, prior.expand(4, 3), atol=1e-6)
    assert CategoryHead(5, 3)(torch.randn(2, 5)).shape == (2, 3)
    rows = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    verbalizer = VerbalizerHead(rows, torch.tensor([0.0, 0.0, 0.5]))
    assert torch.allclose(verbalizer(torch.tensor([[3.0, 1.0]])), torch.tensor([[3.0, 2.0, 4.5]]))
    assert not list(verbalizer.parameters())


def test_gradients_reach_lora_and_head_and_nothing_frozen(tiny_spec, tmp_path):
    from pipeline.llm import load_model
    from pipeline.methods.tslrec.sft import last_states
    from pipeline.methods.tslrec.write import TslrecConfig, add_tslrec_lora

    cfg = TslrecConfig(k=4, lora_layers=1)  # the tiny LLaMA has 2 layers: LoRA on the top one
    loaded = load_model(tiny_spec, cache_dir=tmp_path / "cache")
    model = add_tslrec_lora(loaded.model, cfg)
    head = CategoryHead(32, 4)  # random weights (a prior-initialised head has zero weights,
    # so LoRA's first gradient waits for the head's first step)
    rows = [[5, 6, 7, 8], [9, 10]]
    h = last_states(model, rows, pad_id=0, bf16=False)
    loss = CategoryKLLoss()(head(h), torch.tensor([[1.0, 0, 0, 0], [0, 0.5, 0.5, 0]]))
    loss.backward()
    named = dict(model.named_parameters())
    lora = {n: p for n, p in named.items() if "lora_" in n}
    assert lora and all(".layers.1." in n for n in lora)  # top layer only
    # LoRA's B starts at zero, so at the first step only the B matrices get a gradient.
    grads_b = [p.grad for n, p in lora.items() if "lora_B" in n]
    assert all(g is not None for g in grads_b) and any(g.abs().sum() > 0 for g in grads_b)
    assert head.linear.weight.grad is not None and head.linear.weight.grad.abs().sum() > 0
    frozen = {n: p for n, p in named.items() if "lora_" not in n}
    assert all(not p.requires_grad and p.grad is None for p in frozen.values())
    assert not np.isnan(loss.item())
