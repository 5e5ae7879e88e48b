"""LoRA through peft: only adapters train, gradients reach them and never the frozen base."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.llm import add_lora, trainable_parameter_count
from pipeline.llm import LLMSpec, TextEncoder, adapter_hash, load_model, save_adapter


@pytest.fixture
def causal(tiny_llama_dir: Path, tmp_path: Path):
    spec = LLMSpec(source=str(tiny_llama_dir), dtype="fp32", device="cpu")
    return load_model(spec, tmp_path, lm_head=True)


def test_only_adapters_are_trainable(causal) -> None:
    model = add_lora(causal.model, r=4, alpha=8, dropout=0.0, targets=["q_proj", "v_proj"])
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)
    trainable, total = trainable_parameter_count(model)
    # q_proj 32->32 and v_proj 32->16 per layer, 2 layers: r * (in + out) each
    assert trainable == 2 * (4 * (32 + 32) + 4 * (32 + 16))
    assert total > trainable


def test_gradients_reach_adapters_not_base(causal) -> None:
    model = add_lora(causal.model, r=4, alpha=8, dropout=0.0, targets="all-linear")
    model.train()
    ids = causal.tokenizer(["title is star wars", "the lazy dog"], padding=True,
                           return_tensors="pt")
    labels = ids["input_ids"].masked_fill(ids["attention_mask"] == 0, -100)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    for step in range(2):
        opt.zero_grad()
        loss = model(**ids, labels=labels).loss
        loss.backward()
        for name, p in model.named_parameters():
            if not p.requires_grad:
                assert p.grad is None, name
        b_grads = [p.grad for n, p in model.named_parameters() if "lora_B" in n]
        assert all(g is not None for g in b_grads) and any(g.abs().sum() > 0 for g in b_grads)
        if step == 1:  # lora_B starts at zero, so lora_A only gets a gradient after one step
            a_grads = [p.grad for n, p in model.named_parameters() if "lora_A" in n]
            assert any(g is not None and g.abs().sum() > 0 for g in a_grads)
        opt.step()
    targets = {n.split(".")[-1] for n, m in model.named_modules() if hasattr(m, "lora_A")}
    assert {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"} <= targets
    assert "lm_head" not in targets


def test_encoder_runs_through_peft_and_adapter_hash(tiny_llama_dir: Path, tmp_path: Path) -> None:
    loaded = load_model(LLMSpec(source=str(tiny_llama_dir), dtype="fp32", device="cpu"), tmp_path)
    before = TextEncoder(loaded, progress=False).encode(["title is star wars"])
    loaded.model = add_lora(loaded.model, r=4, targets=["q_proj", "v_proj"])
    enc = TextEncoder(loaded, progress=False)
    np.testing.assert_allclose(enc.encode(["title is star wars"]), before, atol=1e-6)  # B = 0
    h1 = save_adapter(loaded.model, tmp_path / "adapter")
    assert h1 == adapter_hash(tmp_path / "adapter") and len(h1) == 64
    assert h1 == save_adapter(loaded.model, tmp_path / "again")  # path-independent
    with torch.no_grad():
        next(p for n, p in loaded.model.named_parameters() if "lora_B" in n).add_(0.1)
    assert save_adapter(loaded.model, tmp_path / "adapter") != h1
    assert not np.allclose(enc.encode(["title is star wars"]), before, atol=1e-6)
