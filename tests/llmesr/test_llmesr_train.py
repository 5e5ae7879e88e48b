"""LLM-ESR through the common training loop and evaluation; the CLI's up-front checks."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch
from llmesr_helpers import TINY

from models.srs.llmesr import LLMESRConfig
from pipeline.config import load_train_config
from pipeline.evaluate import pick
from pipeline.methods.llmesr.train import semantic_view, train_llmesr


@pytest.mark.parametrize("backbone", ["sasrec", "gru4rec", "bert4rec"])
def test_short_run_learns_keeps_the_table_frozen_and_reports(
        llmesr_store, synthetic_dataset, synthetic_split, item_vectors, tmp_path, backbone):
    store, items, users = llmesr_store
    cfg = load_train_config(backbone, {**TINY, "epochs": 4, "lr": 0.005})
    losses: list[float] = []
    result = train_llmesr(synthetic_dataset, synthetic_split, cfg, store, items, users, tmp_path,
                          progress=False, on_epoch_end=lambda e, loss: losses.append(loss))
    assert all(math.isfinite(x) for x in losses) and losses[-1] < losses[0]
    values = [r["value"] for r in result.test_rows]
    assert values and all(0.0 <= v <= 1.0 for v in values)
    assert pick(result.test_rows, "s100", "overall", "ndcg@10") > 0.0
    # Neighbours retrieved once into the run folder: [U, 100] user ids, never the user.
    nb = np.load(tmp_path / "neighbours.npy")
    assert nb.shape == (synthetic_dataset.n_users, 100)
    assert not (nb == np.arange(1, synthetic_dataset.n_users + 1)[:, None]).any()
    # The frozen table is saved unchanged; adapter and ID table moved.
    best = torch.load(tmp_path / "best.pt", weights_only=True)["model"]
    torch.manual_seed(0)
    fresh = semantic_view(item_vectors, 16)
    assert torch.equal(best["item_emb.semantic.frozen"], fresh.frozen)
    assert not torch.allclose(best["item_emb.semantic.adapter.0.weight"], fresh.adapter[0].weight)


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("teacher", ["exact", "validation"])
def test_resumed_run_matches_uninterrupted(llmesr_store, synthetic_dataset, synthetic_split,
                                           tmp_path, teacher):
    store, items, users = llmesr_store
    cfg = load_train_config("sasrec", {**TINY, "epochs": 2, "llmesr.teacher": teacher})
    args = (synthetic_dataset, synthetic_split, cfg, store, items, users)
    full = train_llmesr(*args, tmp_path / "a", progress=False)

    def stop(epoch, loss):
        raise Interrupt

    with pytest.raises(Interrupt):
        train_llmesr(*args, tmp_path / "b", progress=False, on_epoch_end=stop)
    resumed = train_llmesr(*args, tmp_path / "b", resume=True, progress=False)
    assert resumed.epochs_run == 2 and resumed.test_rows == full.test_rows


def test_distillation_off_needs_no_user_vectors(llmesr_store, synthetic_dataset, synthetic_split,
                                                tmp_path):
    store, items, _ = llmesr_store
    cfg = load_train_config("sasrec", {**TINY, "epochs": 1, "llmesr.distill_weight": 0})
    result = train_llmesr(synthetic_dataset, synthetic_split, cfg, store, items, None, tmp_path,
                          progress=False)
    assert result.epochs_run == 1 and not (tmp_path / "neighbours.npy").exists()


def test_variant_names_and_hashes():
    base = load_train_config("sasrec")
    off = load_train_config("sasrec", {"llmesr.distill_weight": 0, "llmesr.views": "semantic"})
    assert LLMESRConfig().variant() == "llmesr"
    assert off.llmesr.variant() == "llmesr(views=semantic,distill_weight=0.0)"
    assert base.config_hash() != off.config_hash()
    # A default llmesr block stays out of the hash: ID-only runs keep their old hashes.
    assert "llmesr" not in base.model_dump_json(exclude={"llmesr"})
    assert base.config_hash() == load_train_config("sasrec", {"llmesr.n_neighbours": 10}).config_hash()
    # Without distillation the teacher is moot: every teacher's no-RASD run is one run.
    nod = {"llmesr.distill_weight": 0}
    assert len({load_train_config("sasrec", {**nod, "llmesr.teacher": t}).config_hash()
                for t in ("exact", "cached", "validation")}) == 1
    assert load_train_config("sasrec", {"llmesr.teacher": "cached"}).config_hash() != \
        load_train_config("sasrec", {"llmesr.teacher": "validation"}).config_hash()
    with pytest.raises(Exception, match="n_neighbours"):
        LLMESRConfig(n_neighbours=20, retrieve_k=10)


def test_preset_llmesr_section_applies_to_llmesr_only(tmp_path):
    from pipeline.errors import InputError

    preset = tmp_path / "gru.yaml"
    preset.write_text("backbone: gru4rec\nlr: 0.002\nmodel: {dim: 32, dropout: 0.2}\n"
                      "llmesr_overrides: {model.dropout: 0.1, lr_decay_patience: 2}\n")
    plain = load_train_config("gru4rec", preset=preset)
    esr = load_train_config("gru4rec", preset=preset, method="llmesr")
    assert (plain.model.dropout, plain.lr_decay_patience) == (0.2, 0)
    assert (esr.model.dropout, esr.lr_decay_patience, esr.model.dim) == (0.1, 2, 32)
    assert plain.config_hash() != esr.config_hash()  # a run folder of its own
    # Explicit overrides win over the section; a section inside the overrides is merged in.
    assert load_train_config("gru4rec", {"model.dropout": 0.3}, preset, "llmesr").model.dropout == 0.3
    got = load_train_config("gru4rec", {"llmesr_overrides": {"lr": 0.005}}, preset, "llmesr")
    assert (got.lr, got.model.dropout) == (0.005, 0.1)
    assert load_train_config("gru4rec", {"llmesr_overrides": {"lr": 0.005}}, preset).lr == 0.002
    preset.write_text("backbone: gru4rec\nllmesr_overrides: [1]\n")
    with pytest.raises(InputError, match=r"gru\.yaml: llmesr_overrides must be a mapping"):
        load_train_config("gru4rec", preset=preset, method="llmesr")


def _run_cli(args, monkeypatch, capsys):
    from llm4srs.cli import main

    monkeypatch.setattr(sys, "argv", ["llm4srs", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.err


@pytest.mark.parametrize(("extra", "needle"), [
    ([], "--method llmesr needs --embeddings"),
    (["--embeddings", "items/test"], "--method llmesr needs --user-embeddings"),
    (["--embeddings", "items/test", "--user-embeddings", "items/test"], "a users/… kind is needed"),
], ids=["no-items", "no-users", "users-of-the-wrong-entity"])
def test_cli_refuses_incomplete_llmesr(llmesr_store, synthetic_dataset, tmp_path, monkeypatch,
                                       capsys, extra, needle):
    store = llmesr_store[0]
    code, err = _run_cli(["train", "--dataset", "synthetic", "--method", "llmesr", *extra,
                          "--store", str(store.root), "--data-dir", str(tmp_path)],
                         monkeypatch, capsys)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "prepared").exists()


def test_cli_refuses_user_vectors_without_llmesr(tmp_path, monkeypatch, capsys):
    code, err = _run_cli(["train", "--user-embeddings", "users/x", "--data-dir", str(tmp_path)],
                         monkeypatch, capsys)
    assert code == 2 and "only used by --method llmesr" in err


def test_rasd_auto_keeps_the_variant_that_wins_validation(llmesr_store, synthetic_dataset,
                                                          tmp_path, monkeypatch):
    """llmesr.rasd=auto trains LLM-ESR with and without RASD as two ordinary runs and reports
    the test rows of the validation winner; asked again, it reuses both finished runs."""
    import json

    import pipeline.runs as runs
    from pipeline.requests import TrainRequest

    store, items, users = llmesr_store
    request = TrainRequest(dataset="synthetic", method="llmesr", store_root=str(store.root),
                           runs_dir=str(tmp_path / "runs"))
    cfg = load_train_config("sasrec", {**TINY, "epochs": 2, "llmesr.rasd": "auto"}, method="llmesr")
    rows, summary = runs.train_one(str(synthetic_dataset.path), cfg, 0, request, items, users)
    folders = sorted(p for p in (tmp_path / "runs" / synthetic_dataset.name).iterdir())
    assert len(folders) == 2 and any("nosd" in p.name for p in folders)
    valid = {"nosd" in p.name: pick(json.loads((p / "run.json").read_text())["valid_rows"])
             for p in folders}
    winner = next(p for p in folders if ("nosd" in p.name) == (valid[True] > valid[False]))
    test = json.loads((winner / "result.json").read_text())["test_rows"]
    assert pick(rows, metric="ndcg@10") == pick(test)
    assert rows[0]["run"].endswith(winner.name) and rows[0]["method"] == "llmesr(rasd=auto)"
    assert ("RASD off" in summary) == (valid[True] > valid[False])

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")
    monkeypatch.setattr(runs, "train_one", no_training)
    again, _ = runs._rasd_selected(str(synthetic_dataset.path), cfg.model_copy(update={"seed": 0}),
                                   0, request, items, users)
    assert again == rows


def test_stacking_table_is_pinned_and_rasd_auto_settles(llmesr_store, synthetic_dataset):
    from pipeline.errors import InputError
    from pipeline.requests import resolve_llmesr

    store, items, _ = llmesr_store
    cfg = load_train_config("sasrec", {"llmesr.id_from": "items/test"}, method="llmesr")
    pinned = resolve_llmesr(cfg, str(store.root), synthetic_dataset.name)
    assert pinned.llmesr.id_from == items.split("/", 1)[1]  # items/test@<exact version>
    assert pinned.config_hash() != cfg.config_hash()
    with pytest.raises(InputError, match="an items/… kind is needed"):
        resolve_llmesr(load_train_config("sasrec", {"llmesr.id_from": "users/test"}, method="llmesr"),
                       str(store.root), synthetic_dataset.name)
    auto_off = load_train_config("sasrec", {"llmesr.rasd": "auto", "llmesr.distill_weight": 0},
                                 method="llmesr")
    plain_off = load_train_config("sasrec", {"llmesr.distill_weight": 0}, method="llmesr")
    settled = resolve_llmesr(auto_off, str(store.root), synthetic_dataset.name)
    assert settled.config_hash() == plain_off.config_hash()
