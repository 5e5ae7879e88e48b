"""LLM-ESR's dual-view model: structure of every ablation, frozen table, gradients, scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from llmesr_helpers import TINY

from models.item_emb import FrozenAdapterEmbedding, IdEmbedding
from models.srs.base import positions_from_end
from models.srs.llmesr import LLMESR, CrossAttention
from pipeline.config import load_train_config
from pipeline.methods.llm_init.table import pca
from pipeline.methods.llmesr.train import build_llmesr

BACKBONES = ["sasrec", "gru4rec", "bert4rec"]


def _model(item_vectors, backbone="sasrec", **esr) -> LLMESR:
    cfg = load_train_config(backbone, {**TINY, **{f"llmesr.{k}": v for k, v in esr.items()}})
    torch.manual_seed(0)
    return build_llmesr(cfg, item_vectors)


def _batch(n_items: int, b: int = 6, t: int = 8) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    seq = torch.randint(1, n_items + 1, (b, t + 1), generator=g)
    seq[0, :4] = 0  # a short, left-padded history
    return {"input": seq[:, :-1], "target": seq[:, 1:] * (seq[:, :-1] > 0),
            "negative": torch.randint(1, n_items + 1, (b, t), generator=g)}


def test_default_is_the_papers_dual_view(item_vectors):
    m = _model(item_vectors)
    emb = m.item_emb
    assert isinstance(emb.semantic, FrozenAdapterEmbedding) and isinstance(emb.collaborative, IdEmbedding)
    assert isinstance(m.to_collaborative, CrossAttention) and isinstance(m.to_semantic, CrossAttention)
    assert m.to_collaborative.heads == 2 and m.to_collaborative.q.bias is None
    assert len(m.encoders) == 1  # one encoder shared by both views
    assert m.xattn_pos is not None  # positions before the cross-attention (SASRec, BERT4Rec)
    assert _model(item_vectors, "gru4rec").xattn_pos is None  # the GRU variant has none
    # Adapter: P → P/2 → d, two linear layers, no activation in between.
    assert [type(x).__name__ for x in emb.semantic.adapter] == ["Linear", "Linear"]
    assert emb.semantic.adapter[0].in_features == item_vectors.shape[1]
    assert emb.semantic.adapter[0].out_features == item_vectors.shape[1] // 2
    assert emb.semantic.adapter[1].out_features == 16
    assert emb.scoring_table().shape == (len(item_vectors) + 1, 32)  # [N+1, 2d]


@pytest.mark.parametrize(("flag", "check"), [
    ({"cross_attention": False},
     lambda m: m.to_collaborative is None and m.to_semantic is None and len(m.encoders) == 1
     and m.item_emb.dim == 32),
    ({"shared_encoder": False},
     lambda m: len(m.encoders) == 2 and m.to_semantic is not None
     and m.encoders[0].encoder.pos.weight is not m.encoders[1].encoder.pos.weight),
    ({"views": "semantic"},
     lambda m: m.item_emb.collaborative is None and m.item_emb.semantic is not None
     and m.to_semantic is None and m.item_emb.dim == 16),
    ({"views": "collaborative"},
     lambda m: m.item_emb.semantic is None and m.item_emb.collaborative is not None
     and m.to_semantic is None and m.item_emb.dim == 16
     and not any("frozen" in name for name, _ in m.named_buffers())),
], ids=["no-cross-attention", "not-shared", "semantic-only", "collaborative-only"])
def test_each_ablation_changes_the_structure(item_vectors, flag, check):
    assert check(_model(item_vectors, **flag))


def test_id_view_starts_at_the_pca_of_the_llm_table_or_random(item_vectors):
    pca_table = _model(item_vectors).item_emb.collaborative.table.weight[1:-1].detach().numpy()
    rand_table = _model(item_vectors, id_init="random").item_emb.collaborative.table.weight[1:-1]
    proj, _ = pca(item_vectors, 16)
    corr = lambda a, b: abs(np.corrcoef(a.ravel(), b.ravel())[0, 1])  # noqa: E731
    assert corr(pca_table, proj) > 0.999  # PCA projections, rescaled
    assert corr(rand_table.detach().numpy(), proj) < 0.1
    assert np.isclose(pca_table.std(), 16**-0.5, rtol=0.05)


def test_residual_cross_attention_keeps_each_views_own_sequence(item_vectors):
    plain = _model(item_vectors, xattn_residual=False).eval()  # the paper's form
    residual = _model(item_vectors, xattn_residual=True).eval()
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(),
                                                  residual.state_dict().values(), strict=True))
    seq = _batch(plain.n_items)["input"]
    co, se = plain.item_emb.views(seq)
    pos = plain.xattn_pos(positions_from_end(seq))
    expected = plain.encoders[0].encode_vectors(
        co + pos + plain.to_collaborative(se + pos, co + pos, seq, True), seq)
    assert torch.allclose(residual.encode(seq)[..., :16], expected, atol=1e-5)
    assert not torch.allclose(plain.encode(seq)[..., :16], expected, atol=1e-3)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_semantic_table_frozen_rest_trained(item_vectors, backbone):
    m = _model(item_vectors, backbone)
    frozen = m.item_emb.semantic.frozen
    assert not frozen.requires_grad
    assert all(p is not frozen for p in m.parameters())  # never reaches the optimiser
    for loss in ("ce", "bce"):
        m.cfg = m.cfg.model_copy(update={"loss": loss})
        m.zero_grad()
        m.loss(_batch(m.n_items)).backward()
        assert frozen.grad is None
        trained = {"adapter": m.item_emb.semantic.adapter[0].weight,
                   "id table": m.item_emb.collaborative.table.weight,
                   "encoder": next(m.encoders[0].parameters()),
                   "cross-attention": m.to_collaborative.q.weight}
        for name, p in trained.items():
            assert p.grad is not None and p.grad.abs().sum() > 0, (loss, name)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_scores_cover_the_catalogue_and_never_padding(item_vectors, backbone):
    m = _model(item_vectors, backbone).eval()
    seq = _batch(m.n_items)["input"]
    scores = m.score_all(m(seq))
    assert scores.shape == (len(seq), m.n_items + 1)
    assert torch.isneginf(scores[:, 0]).all() and torch.isfinite(scores[:, 1:]).all()
    # Logit-level fusion: the score is the sum of the two views' logits.
    h = m(seq)  # [B, 2d] = [u_co; u_se]
    co = h[:, :16] @ m.item_emb.collaborative.scoring_table().T
    se = h[:, 16:] @ m.item_emb.semantic.scoring_table().T
    assert torch.allclose(scores[:, 1:], (co + se)[:, 1:], atol=1e-5)


@pytest.mark.parametrize("backbone", ["sasrec", "gru4rec"])
def test_next_item_views_never_see_the_future(item_vectors, backbone):
    """Changing the last item leaves every earlier position's hidden state unchanged."""
    m = _model(item_vectors, backbone).eval()
    assert m.causal_xattn
    seq = _batch(m.n_items)["input"]
    other = seq.clone()
    other[:, -1] = other[:, -1] % m.n_items + 1
    assert torch.allclose(m.encode(seq)[:, :-1], m.encode(other)[:, :-1], atol=1e-6)
    assert not torch.allclose(m.encode(seq)[:, -1], m.encode(other)[:, -1])


def test_non_causal_sasrec_gets_the_papers_unmasked_cross_attention(item_vectors):
    cfg = load_train_config("sasrec", {**TINY, "model.causal": False})
    assert not build_llmesr(cfg, item_vectors).causal_xattn


def test_stacking_initialises_the_id_view_from_another_table(item_vectors):
    """llmesr.id_from: the semantic view keeps its table, the ID view starts from the PCA of
    the other one (e.g. items/llmemb-rat) instead of the semantic table's."""
    cfg = load_train_config("sasrec", TINY, method="llmesr")
    other = np.random.default_rng(0).normal(size=(len(item_vectors), 40)).astype(np.float32)
    stacked = build_llmesr(cfg, item_vectors, other)
    alone = build_llmesr(cfg, other)  # its ID view: PCA of `other`
    plain = build_llmesr(cfg, item_vectors)
    rows = slice(1, len(item_vectors) + 1)
    weight = stacked.item_emb.collaborative.table.weight[rows]
    assert torch.allclose(weight, alone.item_emb.collaborative.table.weight[rows])
    assert not torch.allclose(weight, plain.item_emb.collaborative.table.weight[rows])
    assert torch.equal(stacked.item_emb.semantic.frozen, plain.item_emb.semantic.frozen)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_one_batched_pass_of_the_shared_encoder_equals_one_pass_per_view(item_vectors, backbone):
    m = _model(item_vectors, backbone, cross_attention=False).eval()
    seq = _batch(m.n_items)["input"]
    co, se = m.item_emb.views(seq)
    expected = torch.cat([m.encoders[0].encode_vectors(co, seq),
                          m.encoders[0].encode_vectors(se, seq)], dim=-1)  # [B, T, 2d]
    assert torch.allclose(m.encode(seq), expected, atol=1e-5)


def test_composed_adapter_is_the_two_layer_adapter_and_is_adapted_once_per_step(item_vectors):
    m = _model(item_vectors)
    semantic = m.item_emb.semantic
    with torch.no_grad():
        for layer in semantic.adapter:
            layer.bias.normal_()  # non-zero biases: the composed bias must carry both
    assert torch.allclose(semantic.item_vectors(), semantic.adapter(semantic.frozen), atol=1e-5)
    calls = []
    semantic.adapter[0].register_forward_hook(lambda *a: calls.append(1))  # not called: composed
    adapted = []
    original = type(semantic).item_vectors

    def counting(self):
        adapted.append(self._reused is None)
        return original(self)

    type(semantic).item_vectors = counting
    try:
        m.loss(_batch(m.n_items))
    finally:
        type(semantic).item_vectors = original
    assert sum(adapted) == 1 and not calls  # one adaptation for the input and the scoring table
