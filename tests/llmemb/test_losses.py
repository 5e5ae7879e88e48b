"""The contrastive losses against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from models.losses import InfoNCELoss, SoftContrastiveLoss


def test_soft_2x2_identity_is_the_target_entropy():
    # X = Y = I, τ = 1: logits = I, targets = softmax(I) = [[p, q], [q, p]] with p = e/(1+e),
    # so each row's CE is −p·log p − q·log q, and so is the mean.
    loss = SoftContrastiveLoss(tau=1.0, learnable_tau=False)
    eye = torch.eye(2)
    p = math.e / (1 + math.e)
    expected = -(p * math.log(p) + (1 - p) * math.log(1 - p))
    assert loss(eye, eye).item() == pytest.approx(expected, abs=1e-6)


def test_infonce_2x2_identity():
    # Hard targets: −log(e / (e + 1)) = log(1 + e⁻¹) per row, both directions.
    loss = InfoNCELoss(tau=1.0, learnable_tau=False)
    assert loss(torch.eye(2), torch.eye(2)).item() == pytest.approx(math.log(1 + math.exp(-1)), abs=1e-6)


def _by_hand(x: list[list[float]], y: list[list[float]], tau: float) -> float:
    dot = lambda a, b: sum(i * j for i, j in zip(a, b, strict=True))  # noqa: E731
    n = len(x)
    logits = [[dot(x[i], y[j]) / tau for j in range(n)] for i in range(n)]
    t_raw = [[tau * (dot(x[i], x[j]) + dot(y[i], y[j])) / 2 for j in range(n)] for i in range(n)]
    soft = lambda row: [math.exp(v) / sum(math.exp(u) for u in row) for v in row]  # noqa: E731
    targets = [soft(r) for r in t_raw]
    total = 0.0
    for i in range(n):
        row_lp = [math.log(v) for v in soft(logits[i])]
        col_lp = [math.log(v) for v in soft([logits[j][i] for j in range(n)])]
        ce_row = -sum(targets[i][j] * row_lp[j] for j in range(n))
        ce_col = -sum(targets[j][i] * col_lp[j] for j in range(n))
        total += (ce_row + ce_col) / 2
    return total / n


def test_soft_3x3_matches_a_loop_by_hand():
    x = [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]
    y = [[0.8, 0.1], [0.2, 0.9], [0.4, 0.7]]
    loss = SoftContrastiveLoss(tau=3.0, learnable_tau=False)
    assert loss(torch.tensor(x), torch.tensor(y)).item() == pytest.approx(_by_hand(x, y, 3.0), abs=1e-5)


def test_normalize_ignores_scale_and_fp16_is_computed_in_fp32():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(4, 8, generator=g), torch.randn(4, 8, generator=g)
    loss = SoftContrastiveLoss(tau=0.5, learnable_tau=False, normalize=True)
    assert loss(x, y).item() == pytest.approx(loss(10 * x, 3 * y).item(), abs=1e-5)
    big = SoftContrastiveLoss(tau=3.0, learnable_tau=False)
    out = big((x * 300).half(), (y * 300).half())  # fp16 dot products would overflow
    assert out.dtype == torch.float32 and torch.isfinite(out)


def test_learnable_tau_trains_fixed_tau_does_not():
    x, y = torch.randn(3, 4, requires_grad=True), torch.randn(3, 4)
    learn = SoftContrastiveLoss(tau=3.0)
    learn(x, y).backward()
    assert learn.tau.grad is not None and x.grad is not None
    fixed = SoftContrastiveLoss(tau=2.0, learnable_tau=False)
    assert list(fixed.parameters()) == [] and fixed.temperature == 2.0
    assert fixed.get_config_dict() == {"tau": 2.0, "learnable_tau": False, "normalize": False,
                                       "soft_targets": True}
    with pytest.raises(ValueError):
        fixed(torch.randn(3, 4), torch.randn(2, 4))
