"""SCFT on a tiny random LLaMA: augmentation, what trains, resume, the store version."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from pipeline.errors import InputError
from pipeline.methods.llmemb import scft
from pipeline.methods.llmemb.augment import augment_views
from pipeline.methods.llmemb.config import ScftConfig
from pipeline.prompts import item_attribute_pairs

PAIRS = [(f"k{i}", f"v{i}") for i in range(5)]
TINY = dict(batch_size=8, max_length=32, lr=1e-2, save_steps=2, encode_batch_size=64)


def test_views_keep_60_percent_shuffled_and_seeded():
    a, b = augment_views(PAIRS, 0.4, np.random.default_rng(0))
    assert len(a) == len(b) == 3  # 5 − ⌊0.4·5⌋ = ⌈60 %⌉ of 5
    assert set(a) <= set(PAIRS) and set(b) <= set(PAIRS)
    again = augment_views(PAIRS, 0.4, np.random.default_rng(0))
    assert (a, b) == again
    views = [augment_views(PAIRS, 0.4, np.random.default_rng(s)) for s in range(10)]
    assert any(x != y for x, y in views)


def test_heldout_items_are_disjoint_and_seeded():
    cfg = ScftConfig()
    train, held = scft.split_items(100, cfg)
    assert len(held) == 10 and not set(train) & set(held) and len(train) + len(held) == 100
    assert np.array_equal(held, scft.split_items(100, cfg)[1])


def _model(folder, cfg):
    torch.manual_seed(0)
    m = scft.build_st_model(folder, cfg, torch.float32, torch.device("cpu"))
    scft.add_scft_lora(m, cfg)
    return m


def _lora(m) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in m.named_parameters() if "lora_" in n}


def test_few_steps_train_lora_only_and_the_loss_falls(tiny_llama_dir, synthetic_dataset, tmp_path):
    cfg = ScftConfig(max_steps=12, **TINY)
    ids, pairs = item_attribute_pairs(synthetic_dataset.items, cfg.prompt)
    m = _model(tiny_llama_dir, cfg)
    base = {n: p.detach().clone() for n, p in m.named_parameters() if "lora_" not in n}
    lora = _lora(m)
    assert lora and all(p.requires_grad for n, p in m.named_parameters() if "lora_" in n)
    # The same 8 items every step (fresh views of them): a fixed batch.
    info = scft.train_scft(m, ids[:8], pairs[:8], cfg, tmp_path)
    losses = info["losses"]
    assert len(losses) == 12 and all(np.isfinite(losses))
    assert np.mean(losses[-4:]) < np.mean(losses[:4])
    after = dict(m.named_parameters())
    assert any(not torch.equal(lora[n], after[n]) for n in lora)
    assert all(torch.equal(base[n], after[n]) for n in base)
    assert info["tau"] != 3.0  # learnable τ moved


def test_a_killed_run_resumes_from_its_checkpoint(tiny_llama_dir, synthetic_dataset, tmp_path):
    cfg = ScftConfig(max_steps=4, **TINY)
    ids, pairs = item_attribute_pairs(synthetic_dataset.items, cfg.prompt)
    whole = _model(tiny_llama_dir, cfg)
    scft.train_scft(whole, ids[:40], pairs[:40], cfg, tmp_path / "a")
    killed = tmp_path / "b"
    scft.train_scft(_model(tiny_llama_dir, cfg), ids[:40], pairs[:40], cfg, killed)
    for extra in (killed / "checkpoints" / "checkpoint-4",):  # as if killed after step 2
        for f in sorted(extra.rglob("*"), reverse=True):
            f.unlink() if f.is_file() else f.rmdir()
        extra.rmdir()
    resumed = _model(tiny_llama_dir, cfg)
    info = scft.train_scft(resumed, ids[:40], pairs[:40], cfg, killed, resume=True)
    assert info["resumed_from"] == "checkpoint-2" and info["steps"] == 4
    a, b = _lora(whole), _lora(resumed)
    assert all(torch.allclose(a[n], b[n], atol=1e-5) for n in a)


def test_write_scft_end_to_end(tiny_spec, synthetic_dataset, tmp_path):
    from embeddings_store import EmbeddingStore

    store = EmbeddingStore(tmp_path / "store")
    # No interactions at all: SCFT sees item text only, so nothing of valid/test can leak.
    textual = dataclasses.replace(synthetic_dataset, interactions=None)
    cfg = ScftConfig(max_steps=3, **TINY)
    ref = scft.write_scft(textual, cfg, tiny_spec, store, tmp_path / "run",
                          cache_dir=tmp_path / "cache")
    _, vectors = store.read(ref)
    assert vectors.shape == (synthetic_dataset.n_items, 32)
    assert np.linalg.norm(vectors.mean(axis=0)) < 0.3  # centred before normalising
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)
    manifest = json.loads((ref.path / "manifest.json").read_text())
    assert manifest["centered"] and manifest["normalized"]
    text = json.dumps(manifest)
    for key in ("heldout_recall@1_before", "heldout_recall@1_after", "adapter_hash", "step_cap"):
        assert key in text
    assert (tmp_path / "run" / "adapter" / "adapter_config.json").is_file()


def test_a_dataset_without_text_is_refused(tiny_spec, synthetic_dataset, tmp_path):
    bare = dataclasses.replace(synthetic_dataset,
                               items=synthetic_dataset.items.select(["item_id", "raw_id"]))
    with pytest.raises(InputError, match="text attributes"):
        scft.run_scft(bare, ScftConfig(), tiny_spec, tmp_path / "run", cache_dir=tmp_path / "c")
    assert not (tmp_path / "run").exists()
