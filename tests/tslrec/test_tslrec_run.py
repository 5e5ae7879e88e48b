"""TSLRec end to end on a tiny random LLaMA: the store version, limited-text mode, the
verbalizer output, and a killed SFT that resumes on the same curve."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from tslrec_helpers import K

from pipeline.errors import InputError
from pipeline.methods.tslrec.data import TslrecPrompt
from pipeline.methods.tslrec.write import TslrecConfig, run_tslrec, write_tslrec

TINY = dict(k=K, max_steps=4, batch_size=8, save_steps=2, encode_batch_size=64, lr=1e-2,
            head_lr=1e-2, prompt=TslrecPrompt(max_tokens=48, item_max_tokens=8))


def test_write_tslrec_stores_centred_vectors_and_the_manifest(
        tiny_spec, synthetic_dataset, synthetic_split, store_with_sasrec, tmp_path):
    store, sasrec = store_with_sasrec
    run_dir = tmp_path / "run"
    ref = write_tslrec(synthetic_dataset, synthetic_split, TslrecConfig(**TINY), tiny_spec, store,
                       run_dir, sasrec_ref=sasrec, cache_dir=tmp_path / "cache")
    assert ref.kind == "items/tslrec"
    ids, vectors = store.read(ref)
    n = synthetic_dataset.n_items
    assert np.array_equal(ids, np.arange(1, n + 1)) and vectors.shape == (n, 32)
    assert np.linalg.norm(vectors.mean(axis=0)) < 0.3  # centred before normalising
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)

    m = store.manifest(ref)
    assert m.centered and m.normalized and m.producer.generator == "tslrec"
    assert m.producer.adapter_hash and len(m.producer.adapter_hash) == 64
    cfg = m.producer.config
    assert cfg["k"] == K and cfg["mode"] == "text" and cfg["pooling"] == "last"
    assert cfg["caps"]["max_steps"] == 4 and cfg["caps"]["max_tokens"] == 48
    assert cfg["categories"]["inertia"] > 0 and sum(cfg["categories"]["sizes"]) == n
    for key in ("heldout_kl_untuned", "heldout_kl_tuned", "heldout_kl_global",
                "heldout_top1_untuned", "heldout_top1_tuned", "heldout_top1_global"):
        assert np.isfinite(m.metrics[key]) and m.metrics[key] >= 0
    assert m.metrics["heldout_kl_global"] > 0
    # One SFT example per user: SFT users + held-out users are all users.
    users = synthetic_split.n_users
    assert m.metrics["count_sft_users"] + m.metrics["n_heldout"] == users
    assert m.metrics["count_sft_users"] == round(0.9 * users)
    assert m.metrics["count_instance_level_examples"] > m.metrics["count_sft_users"]
    assert m.metrics["count_examples_seen"] == 4 * 8
    assert set(m.metrics["seconds"]) >= {"kmeans", "sft", "items", "total"}
    upstream = store.resolve(sasrec)
    assert [(p.kind, p.version) for p in m.parents] == [(upstream.kind, upstream.version)]

    saved = json.loads((run_dir / "categories.json").read_text())
    assert saved["k"] == K and saved["seed"] == 0 and saved["inertia"] > 0
    assert len(saved["item_category"]) == n
    assert (run_dir / "adapter" / "adapter_config.json").is_file()
    assert (run_dir / "sft_last.pt").is_file()


def test_limited_text_mode_runs_on_a_dataset_without_text(
        tiny_spec, synthetic_dataset, synthetic_split, store_with_sasrec, tmp_path):
    store, sasrec = store_with_sasrec
    bare = dataclasses.replace(synthetic_dataset,
                               items=synthetic_dataset.items.select(["item_id", "raw_id"]))
    with pytest.raises(InputError, match="no text"):
        run_tslrec(bare, synthetic_split, TslrecConfig(**TINY, mode="text"), tiny_spec, store,
                   tmp_path / "refused", sasrec_ref=sasrec, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "refused").exists()
    _, vectors, info = run_tslrec(bare, synthetic_split, TslrecConfig(**TINY), tiny_spec, store,
                                  tmp_path / "run", sasrec_ref=sasrec, cache_dir=tmp_path / "cache")
    assert info["mode"] == "ids" and "item_" in info["example_prompt"]
    assert vectors.shape == (bare.n_items, 32) and np.isfinite(vectors).all()
    # Different items get different vectors from their id tokens alone.
    assert np.unique(vectors.round(4), axis=0).shape[0] > bare.n_items // 2


def test_verbalizer_output_uses_the_lm_head_and_a_zero_shot_baseline(
        tiny_spec, synthetic_dataset, synthetic_split, store_with_sasrec, tmp_path):
    store, sasrec = store_with_sasrec
    cfg = TslrecConfig(**TINY, output="lm")
    _, vectors, info = run_tslrec(synthetic_dataset, synthetic_split, cfg, tiny_spec, store,
                                  tmp_path / "run", sasrec_ref=sasrec, cache_dir=tmp_path / "cache")
    assert info["untuned_baseline"] == "zero-shot verbalizer" and info["baseline_losses"] == []
    assert all(np.isfinite(v["kl"]) for v in info["heldout"].values())
    assert len(info["losses"]) == 4 and vectors.shape[1] == 32


def test_a_killed_sft_resumes_on_the_same_curve(tiny_spec, tmp_path, monkeypatch):
    from models.losses import CategoryKLLoss
    from models.tslrec import CategoryHead
    from pipeline.llm import load_model
    from pipeline.methods.tslrec.data import batch_schedule
    from pipeline.methods.tslrec.sft import train_sft
    from pipeline.methods.tslrec.write import add_tslrec_lora

    cfg = TslrecConfig(k=K)
    rng = np.random.default_rng(0)
    inputs = [rng.integers(3, 60, size=rng.integers(3, 12)).tolist() for _ in range(40)]
    targets = rng.dirichlet(np.ones(K), size=40)
    schedule = batch_schedule(np.arange(40), 8, 4, seed=0)

    def fresh():
        loaded = load_model(tiny_spec, cache_dir=tmp_path / "cache")
        torch.manual_seed(1)
        return add_tslrec_lora(loaded.model, cfg), CategoryHead(32, K)

    def run(run_dir, resume=False):
        model, head = fresh()
        info = train_sft(model, head, inputs, targets, schedule, pad_id=0, lr=1e-2, head_lr=1e-2,
                         bf16=False, run_dir=run_dir, save_steps=2, seed=0, resume=resume)
        lora = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}
        return info, lora, head

    whole, lora_a, head_a = run(tmp_path / "a")
    calls = {"n": 0}
    original = CategoryKLLoss.forward

    def dies_at_step_3(self, logits, target):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed")
        return original(self, logits, target)

    monkeypatch.setattr(CategoryKLLoss, "forward", dies_at_step_3)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b")
    monkeypatch.setattr(CategoryKLLoss, "forward", original)
    resumed, lora_b, head_b = run(tmp_path / "b", resume=True)
    assert resumed["resumed_from"] == 2 and len(resumed["losses"]) == 4
    assert np.allclose(resumed["losses"], whole["losses"], atol=1e-5)
    assert all(torch.allclose(lora_a[n], lora_b[n], atol=1e-5) for n in lora_a)
    assert torch.allclose(head_a.linear.weight, head_b.linear.weight, atol=1e-5)
    assert whole["losses"][0] != whole["losses"][-1]
