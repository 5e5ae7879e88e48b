"""E4SRec training: samples, schedule, exact resume, the wall-clock budget, learning."""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest
import torch

from pipeline.methods.e4srec import E4SRecConfig
from pipeline.methods.e4srec.samples import epoch_order, make_batch, sample_pool, steps_per_epoch
from pipeline.methods.e4srec.schedule import CosineWarmup, eval_points, fit_plan


def tiny_config(**kw) -> E4SRecConfig:
    base = dict(batch_size=8, epochs=2, max_samples_per_epoch=40, warmup_steps=2, lr=3e-3,
                validations=2, valid_users=30, save_every_steps=1, eval={"batch_size": 64})
    return E4SRecConfig(**(base | kw))


def test_samples_come_from_training_items_only():
    train = [np.array([5, 6, 7, 8]), np.array([9]), np.array([1, 2, 3, 4, 5, 6])]
    pool = sample_pool(train, targets_per_user=3, min_history=1)
    # user 0: positions 1..3; user 1: none (no history); user 2: the last 3 positions
    assert pool.tolist() == [[0, 1], [0, 2], [0, 3], [2, 3], [2, 4], [2, 5]]
    history, target = make_batch(train, pool[[0, 5]], max_history=2)
    assert history.tolist() == [[0, 5], [4, 5]] and target.tolist() == [6, 6]
    assert len(sample_pool(train, 50, 0)) == 4 + 1 + 6  # empty histories allowed with 0
    order = epoch_order(len(pool), cap=4, seed=1, epoch=0)
    assert len(order) == 4 and np.array_equal(order, epoch_order(len(pool), 4, 1, 0))
    assert not np.array_equal(epoch_order(100, None, 1, 0), epoch_order(100, None, 1, 1))
    assert steps_per_epoch(len(pool), 4, 3) == 2 and steps_per_epoch(len(pool), None, 4) == 2


def test_schedule_warms_up_then_decays_to_zero():
    f = CosineWarmup(warmup=4, total=20)
    values = [f(s) for s in range(21)]
    assert values[0] == pytest.approx(0.2) and values[3] == pytest.approx(0.8)
    assert values[4] == pytest.approx(1.0) and values[20] == pytest.approx(0.0, abs=1e-12)
    assert all(a >= b for a, b in pairwise(values[4:]))
    assert f(12) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    assert eval_points(10, 2) == {5, 10} and eval_points(3, 1) == {3}


def test_budget_shrinks_the_plan_but_never_grows_it():
    # 100 s budget, 10 s used, 20 s reserved for evaluations, 1 s per step -> 0.95 * 70 more
    assert fit_plan(500, 10, 100, 10, 1.0, 20) == 10 + 66
    assert fit_plan(50, 10, 100, 10, 1.0, 20) == 50
    assert fit_plan(50, 10, 100, 99, 1.0, 20) == 11  # over budget: one more step at most


def _train(make_model, split, tmp, cfg, **kw):
    from pipeline.methods.e4srec.train import train_e4srec

    model = make_model(split.n_items, seed=cfg.seed)
    result = train_e4srec(model, split, cfg, tmp, progress=False, **kw)
    return model, result


def test_resume_continues_exactly(make_model, synthetic_split, tmp_path):
    from pipeline import checkpoint

    cfg = tiny_config()
    model_a, res_a = _train(make_model, synthetic_split, tmp_path / "a", cfg)
    assert res_a.steps_run == res_a.planned_steps == 10 and res_a.epochs_run == 2
    assert [v["step"] for v in res_a.validations] == [5, 10]

    class Crash(Exception):
        pass

    def crash_at_7(step: int, loss: float) -> None:
        if step == 7:
            raise Crash
    with pytest.raises(Crash):
        _train(make_model, synthetic_split, tmp_path / "b", cfg, on_step=crash_at_7)
    ckpt = checkpoint.load(tmp_path / "b" / "last.pt")  # plain dict, weights_only
    assert ckpt["state"]["step"] == 7 and "trainable" in ckpt and "rng" in ckpt
    model_b, res_b = _train(make_model, synthetic_split, tmp_path / "b", cfg, resume=True)
    state_a, state_b = model_a.trainable_state_dict(), model_b.trainable_state_dict()
    assert state_a.keys() == state_b.keys()
    for k in state_a:
        assert torch.equal(state_a[k], state_b[k]), k
    assert res_b.test_rows == res_a.test_rows and res_b.best_step == res_a.best_step
    assert res_b.validations == res_a.validations or [v["ndcg@10"] for v in res_b.validations] \
        == [v["ndcg@10"] for v in res_a.validations]
    best = checkpoint.load(tmp_path / "a" / "best.pt")
    assert best["step"] == res_a.best_step and set(best["trainable"]) == set(state_a)


def test_selection_uses_validation_and_budget_bounds_the_run(make_model, synthetic_split, tmp_path):
    cfg = tiny_config(epochs=50, max_minutes=1e-4, calibrate_steps=2)
    _, res = _train(make_model, synthetic_split, tmp_path, cfg)
    assert res.stopped_by_budget and res.steps_run < 50 * 5
    assert res.validations and res.validations[-1]["step"] == res.steps_run
    assert res.best_step in [v["step"] for v in res.validations]
    # the reported validation rows are those of the selected step; test was never used
    best = max(res.validations, key=lambda v: v["ndcg@10"])
    assert best["step"] == res.best_step
    assert {r["group"] for r in res.test_rows} >= {"overall", "tail_item", "head_user"}


def test_trainable_parts_can_fit_a_batch(make_model):
    """Gradients reach the right places with the right signs: a fixed batch is memorised."""
    from pipeline.methods.e4srec.train import make_optimizer

    model = make_model(40, lora_dropout=0.0).train()
    gen = torch.Generator().manual_seed(0)
    history = torch.randint(1, 41, (8, 6), generator=gen)
    target = torch.randint(1, 41, (8,), generator=gen)
    opt = make_optimizer(model, E4SRecConfig(lr=1e-2, head_lr=3e-2))
    losses = []
    for _ in range(60):
        loss = model.loss(history, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[0] > 3.0 and losses[-1] < 0.5
