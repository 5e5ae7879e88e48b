"""Training loop: resume equivalence, batch-size independent evaluation, checkpoints, leakage."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pipeline import batches
from pipeline.config import load_train_config
from pipeline.evaluate import EvalConfig, evaluate, pick
from pipeline.train import build_model, model_scorer, train_srs

TINY = {"model.dim": 16, "model.max_len": 20, "model.heads": 1, "epochs": 4, "batch_size": 32,
        "lr_decay_patience": 1,
        "patience": 10}


def _cfg(backbone="sasrec", **extra):
    return load_train_config(backbone, {**TINY, **extra})


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("backbone", ["sasrec", "bert4rec"])
def test_resumed_run_matches_uninterrupted(synthetic_split, tmp_path, backbone):
    cfg = _cfg(backbone, **({"model.loss": "bce"} if backbone == "sasrec" else {}))
    full = train_srs(synthetic_split, cfg, tmp_path / "a", progress=False)

    def stop_at_two(epoch, loss):
        if epoch == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        train_srs(synthetic_split, cfg, tmp_path / "b", on_epoch_end=stop_at_two, progress=False)
    resumed = train_srs(synthetic_split, cfg, tmp_path / "b", resume=True, progress=False)
    assert resumed.epochs_run == full.epochs_run == 4
    assert resumed.test_rows == full.test_rows
    # the learning curve survives the interruption: one entry per evaluation, as uninterrupted
    assert resumed.curve == full.curve and [c["epoch"] for c in full.curve] == [1, 2, 3, 4]
    best = max(full.curve, key=lambda c: c["valid"])
    assert best["epoch"] == full.best_epoch and all(c["loss"] > 0 for c in full.curve)
    written = json.loads((tmp_path / "a" / "result.json").read_text())
    assert written["curve"] == full.curve


def test_checkpoints_are_plain_dicts(synthetic_split, tmp_path):
    train_srs(synthetic_split, _cfg(epochs=1), tmp_path, progress=False)
    last = torch.load(tmp_path / "last.pt", weights_only=True)
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    assert {"model", "optimizer", "best_model", "state", "rng", "config"} <= set(last)
    assert last["state"]["epoch"] == 1 and best["config"]["backbone"] == "sasrec"
    assert (tmp_path / "config.json").is_file() and (tmp_path / "result.json").is_file()


@pytest.mark.parametrize("backbone", ["sasrec", "gru4rec", "bert4rec"])
def test_metrics_do_not_depend_on_eval_batch_size(synthetic_split, backbone):
    cfg = _cfg(backbone)
    torch.manual_seed(0)
    model = build_model(cfg, synthetic_split.n_items).eval()
    results = [evaluate(model_scorer(model), synthetic_split, "test", EvalConfig(batch_size=bs))
               for bs in (1, 7, 512)]
    assert results[0] == results[1] == results[2]


def test_training_sees_only_training_sequences(synthetic_split, tmp_path, monkeypatch):
    seen: list[np.ndarray] = []
    real = batches.next_item_batch

    def spy(seqs, *args, **kwargs):
        seen.extend(seqs)
        return real(seqs, *args, **kwargs)

    monkeypatch.setattr("pipeline.train.next_item_batch", spy)
    train_srs(synthetic_split, _cfg(epochs=1), tmp_path, progress=False)
    train_ids = {id(s) for s in synthetic_split.train}
    assert seen and all(id(s) in train_ids for s in seen)
    for u, (v, t) in enumerate(zip(synthetic_split.valid, synthetic_split.test, strict=True)):
        assert v not in synthetic_split.train[u] and t not in synthetic_split.train[u]


def test_sasrec_learns_beyond_popularity(synthetic_split, tmp_path):
    pop = train_srs(synthetic_split, _cfg("pop"), tmp_path / "pop", progress=False)
    sas = train_srs(synthetic_split, _cfg(epochs=15, lr=0.005), tmp_path / "sas", progress=False)
    assert pick(sas.test_rows) > pick(pop.test_rows) + 0.05


@pytest.mark.gpu
def test_training_on_gpu_matches_cpu_quality(synthetic_split, tmp_path):
    cpu = train_srs(synthetic_split, _cfg(device="cpu"), tmp_path / "cpu", progress=False)
    gpu = train_srs(synthetic_split, _cfg(device="cuda"), tmp_path / "gpu", progress=False)
    assert abs(pick(gpu.test_rows) - pick(cpu.test_rows)) < 0.05


def test_a_diverged_run_stops_with_its_epoch_never_a_metric(synthetic_split, tmp_path):
    from pipeline.errors import DivergedError

    with pytest.raises(DivergedError, match=r"training diverged at epoch 1.*lr=1e\+30"):
        train_srs(synthetic_split, _cfg(lr=1e30), tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "best.pt").exists()
    assert not (tmp_path / "run" / "result.json").exists()


def test_cloze_prefixes_cut_each_copy_to_a_seeded_length_of_at_least_two():
    from pipeline.train import _random_prefixes

    seqs = [np.arange(1, n + 1) for n in (1, 2, 3, 50, 200)]
    cut = _random_prefixes(seqs, torch.Generator().manual_seed(0))
    again = _random_prefixes(seqs, torch.Generator().manual_seed(0))
    assert [len(c) for c in cut] == [len(c) for c in again]  # the trainer's generator decides
    assert len(cut[0]) == 1 and len(cut[1]) == 2  # too short to cut: kept whole
    assert all(2 <= len(c) <= len(s) and np.array_equal(c, s[:len(c)])
               for c, s in zip(cut[1:], seqs[1:], strict=True))
    lengths = [len(c) for c in _random_prefixes([np.arange(1, 101)] * 2000,
                                                  torch.Generator().manual_seed(1))]
    assert min(lengths) == 2 and max(lengths) == 100  # uniform over 2..len
    assert abs(np.mean(lengths) - 51) < 2


def test_fields_added_later_leave_older_hashes_alone_at_their_defaults():
    base = load_train_config("bert4rec", {"model.cloze_prefixes": False, "model.mask_seen": False,
                                          "model.mask_prob": 0.3, "epochs": 200, "patience": 25})
    assert base.config_hash() == "84b8aca5d1"  # the pre-renovation BERT4Rec preset's hash
    on = load_train_config("bert4rec", {"model.cloze_prefixes": True})
    assert on.config_hash() != load_train_config(
        "bert4rec", {"model.cloze_prefixes": False}).config_hash()


def test_stage1_cache_key_of_a_train_config_is_its_hash_and_seed():
    from pipeline.runs import cache_key

    base = load_train_config("sasrec")
    # threads (outside the hash) and the dump's shape (fields added later at their
    # defaults) leave the key alone: sasrec-id is not retrained after an upgrade
    assert cache_key(base) == cache_key(load_train_config("sasrec", {"threads": 1}))
    assert cache_key(base) == cache_key({"train_config": base.config_hash(), "seed": 0})
    assert cache_key(base) != cache_key(load_train_config("sasrec", {"seed": 1}))
    assert cache_key(base) != cache_key(load_train_config("sasrec", {"lr": 0.001}))
