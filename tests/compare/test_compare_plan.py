"""Planning the comparison grid: kinds from the store, user kinds, cells and the preset."""

from __future__ import annotations

import numpy as np
import pytest


def _write(store, kind, n=20, dim=8, dataset="toy"):
    from embeddings_store import ManifestInput, Producer

    vecs = np.random.default_rng(len(kind)).normal(size=(n, dim)).astype(np.float32)
    return store.write(dataset, kind, np.arange(1, n + 1), vecs,
                       ManifestInput(dataset_fingerprint="f", producer=Producer(generator="test"),
                                     code_version="test"))


def test_store_kinds_and_selection(tmp_path):
    from embeddings_store import EmbeddingStore
    from pipeline.compare import select_kinds, store_kinds
    from pipeline.errors import InputError

    store = EmbeddingStore(tmp_path)
    for kind in ("items/sasrec-id", "items/llmemb-scft", "items/llmemb-rat",
                 "items/semantic-minilm", "users/semantic-minilm"):
        _write(store, kind)
    items = store_kinds(tmp_path, "toy", "items")
    assert items == ["items/llmemb-rat", "items/llmemb-scft", "items/sasrec-id",
                     "items/semantic-minilm"]
    assert store_kinds(tmp_path, "toy", "users") == ["users/semantic-minilm"]
    assert store_kinds(tmp_path, "other", "items") == []
    # None: all but the excluded, semantic first
    assert select_kinds(items, None) == ["items/semantic-minilm", "items/llmemb-rat",
                                         "items/llmemb-scft"]
    patterns = ["items/semantic-*", "items/llmemb-rat"]
    assert select_kinds(items, None, patterns) == ["items/semantic-minilm", "items/llmemb-rat"]
    assert select_kinds(items, None, ["items/nothing-*"])[0] == "items/semantic-minilm"  # fallback: all
    assert select_kinds(items, ["llmemb-scft", "items/llmemb-scft"]) == ["items/llmemb-scft"]
    with pytest.raises(InputError, match="not in the store"):
        select_kinds(items, ["items/tslrec"])
    with pytest.raises(InputError, match="llm4srs embed"):
        select_kinds(["items/sasrec-id"], None)


def test_pick_user_kind_prefers_the_same_name():
    from pipeline.compare import pick_user_kind

    users = ["users/semantic-minilm", "users/semantic-smollm2"]
    assert pick_user_kind("items/semantic-smollm2", users) == "users/semantic-smollm2"
    assert pick_user_kind("items/llmemb-rat", users) == "users/semantic-minilm"
    assert pick_user_kind("items/llmemb-rat", ["users/other"]) is None


def test_plan_cells_counts_and_overrides():
    from pipeline.compare import DEFAULT_ABLATIONS, ComparePreset, methods_for, plan_cells

    preset = ComparePreset(overrides={"epochs": 3, "threads": 1},
                           llmesr_overrides={"llmesr.n_neighbours": 5},
                           init_overrides={"lr": 0.001, "epochs": 9},
                           ablation_backbones=["sasrec"], llmesr_all_kinds=True)
    items = ["toy/items/semantic-a@v0001", "toy/items/llmemb-rat@v0001"]
    users = {items[0]: "toy/users/semantic-a@v0001", items[1]: "toy/users/semantic-a@v0001"}
    methods = methods_for(None, DEFAULT_ABLATIONS, llmesr=True)
    assert methods == ["id", "llm-init", "llmesr", "llmesr-nodistill", "llmesr-nocross",
                       "llmesr-exact", "llmesr-cached", "stacked"]
    backbones, seeds = ["sasrec", "gru4rec"], [0, 1, 2]
    cells, notes = plan_cells(backbones, seeds, items, users, methods, DEFAULT_ABLATIONS, preset,
                              overrides={"epochs": 2})
    count = {m: sum(c.method == m for c in cells) for m in methods}
    # id: B×S; llm-init and llmesr: K×B×S; ablations: first kind × sasrec × S
    assert count == {"id": 6, "llm-init": 12, "llmesr": 12, "llmesr-nodistill": 3,
                     "llmesr-nocross": 3, "llmesr-exact": 3, "llmesr-cached": 3, "stacked": 3}
    stacked = next(c for c in cells if c.method == "stacked")
    assert stacked.embedding == items[0] and stacked.overrides["llmesr.id_from"] == "items/llmemb-rat"
    assert notes == []
    assert len({(c.method, c.backbone, c.seed, c.embedding) for c in cells}) == len(cells)
    idc = next(c for c in cells if c.method == "id")
    assert idc.overrides == {"epochs": 2, "threads": 1} and idc.embedding is None
    init = next(c for c in cells if c.method == "llm-init")  # its section, the caller's last
    assert init.overrides == {"epochs": 2, "threads": 1, "lr": 0.001}
    nod = next(c for c in cells if c.method == "llmesr-nodistill")
    assert nod.train_method == "llmesr" and nod.user_embedding is None
    assert nod.overrides == {"epochs": 2, "threads": 1, "llmesr.n_neighbours": 5,
                             "llmesr.distill_weight": 0}
    assert nod.embedding == items[0] and nod.backbone == "sasrec"
    full = next(c for c in cells if c.method == "llmesr" and c.embedding == items[1])
    assert full.user_embedding == users[items[1]]
    assert max(cells, key=lambda c: c.cost).train_method == "llmesr"
    # the budget default: LLM-ESR on the first kind only
    first_only = preset.model_copy(update={"llmesr_all_kinds": False})
    cells, _ = plan_cells(backbones, seeds, items, users, methods, DEFAULT_ABLATIONS, first_only)
    assert {c.embedding for c in cells if c.method == "llmesr"} == {items[0]}
    assert sum(c.method == "llmesr" for c in cells) == 6
    assert sum(c.method == "llm-init" for c in cells) == 12

    # no user kind: the distilling LLM-ESR cells are skipped with one note, nodistill stays;
    # no items/llmemb-rat in the grid: `stacked` is skipped with a note
    cells, notes = plan_cells(["gru4rec"], [0], items[:1], {items[0]: None}, methods,
                              DEFAULT_ABLATIONS, preset)
    assert sorted(c.method for c in cells) == ["id", "llm-init", "llmesr-nodistill"]
    assert len(notes) == 5 and "no users/* kind" in notes[0]
    assert any("stacked: skipped, items/llmemb-rat" in n for n in notes)


def test_methods_validation():
    from pipeline.compare import DEFAULT_ABLATIONS, methods_for
    from pipeline.errors import InputError

    assert methods_for(None, DEFAULT_ABLATIONS, llmesr=False) == ["id", "llm-init"]
    assert methods_for(["id", "id"], DEFAULT_ABLATIONS, llmesr=False) == ["id"]
    with pytest.raises(InputError, match="unknown method"):
        methods_for(["bogus"], DEFAULT_ABLATIONS, llmesr=True)
    with pytest.raises(InputError, match="not available"):
        methods_for(["llmesr"], DEFAULT_ABLATIONS, llmesr=False)


def test_repo_preset_loads_and_is_budgeted():
    from pipeline.compare import load_preset
    from pipeline.config import load_train_config

    preset = load_preset()
    assert preset.concurrency >= 1 and preset.overrides["threads"] == 1
    for backbone in ("sasrec", "gru4rec", "bert4rec"):  # valid for every backbone
        cfg = load_train_config(backbone, preset.overrides)
        assert cfg.epochs <= 50 and cfg.model.max_len <= 50


def test_grid_embeddings_resolves_exact_versions(tmp_path, synthetic_dataset):
    from embeddings_store import EmbeddingStore
    from pipeline.compare import grid_embeddings

    ds = synthetic_dataset
    store = EmbeddingStore(tmp_path)
    refs = {kind: _write(store, kind, n=ds.n_users if kind.startswith("users/") else ds.n_items,
                         dataset=ds.name)
            for kind in ("items/llmemb-rat", "items/semantic-x", "items/sasrec-id",
                         "users/semantic-x")}
    items, users = grid_embeddings(ds, tmp_path, None)
    assert items == [str(refs["items/semantic-x"]), str(refs["items/llmemb-rat"])]
    assert all("@" in r for r in items)
    assert users == {r: str(refs["users/semantic-x"]) for r in items}
    items, _ = grid_embeddings(ds, tmp_path, ["llmemb-rat"])
    assert items == [str(refs["items/llmemb-rat"])]
