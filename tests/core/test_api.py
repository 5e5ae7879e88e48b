"""The downstream surface: `recommend` from a trained run, and the Python API (examples/)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trained(synthetic_dataset, tmp_path_factory):
    """A tiny SASRec trained on the synthetic data through pipeline.runs (no Prefect)."""
    from pipeline.config import load_train_config
    from pipeline.recommend import TrainedRun
    from pipeline.requests import TrainRequest
    from pipeline.runs import train_one

    runs = tmp_path_factory.mktemp("runs")
    request = TrainRequest(dataset="synthetic", runs_dir=str(runs))
    cfg = load_train_config("sasrec", {"epochs": 2, "model.dim": 16, "model.max_len": 20})
    rows, _ = train_one(str(synthetic_dataset.path), cfg, 0, request)
    run = rows[0]["run"]
    assert run.startswith(f"{synthetic_dataset.name}/sasrec-id-")
    return TrainedRun.load(runs / run), runs, run


def test_recommend_is_the_arg_top_k_of_score_all_without_the_history(trained, synthetic_dataset):
    run, _, _ = trained
    raw = synthetic_dataset.items.sort("item_id")["raw_id"].to_list()
    history_ids = [5, 17, 42]
    recs = run.recommend([raw[i - 1] for i in history_ids], k=10)
    scores = run.score_all([history_ids])[0]  # [N+1]
    scores[0] = -torch.inf
    scores[history_ids] = -torch.inf
    expected = torch.topk(scores, 10).indices.tolist()
    assert [r["item"] for r in recs] == [raw[i - 1] for i in expected]
    assert [r["rank"] for r in recs] == list(range(1, 11))
    assert all(a["score"] >= b["score"] for a, b in itertools.pairwise(recs))
    assert not {r["item"] for r in recs} & {raw[i - 1] for i in history_ids}
    # the model's own scorer (what evaluation ranks with) agrees with score_all
    from pipeline.train import model_scorer

    same = model_scorer(run.model)(np.array([1]), [np.array(history_ids)])[0]
    assert torch.allclose(same, run.score_all([history_ids])[0], atol=1e-5)


def test_unknown_raw_ids_are_one_line_or_skipped(trained, synthetic_dataset):
    run, _, _ = trained
    known = synthetic_dataset.items["raw_id"][0]
    with pytest.raises(InputError, match=r"1 item id.*not-an-item.*--skip-unknown"):
        run.recommend([known, "not-an-item"])
    assert len(run.recommend([known, "not-an-item"], k=3, skip_unknown=True)) == 3


def test_recommend_cli_single_and_batch(trained, synthetic_dataset, tmp_path):
    import polars as pl

    _, runs, name = trained
    raw = synthetic_dataset.items.sort("item_id")["raw_id"].to_list()
    cli = Path(sys.executable).with_name("llm4srs")
    one = subprocess.run([str(cli), "recommend", name, "--history", ",".join(raw[:3]), "-k", "5",
                          "--runs-dir", str(runs), "--json"], capture_output=True, text=True)
    assert one.returncode == 0, one.stderr
    recs = json.loads(one.stdout)
    assert len(recs) == 5 and not {r["item"] for r in recs} & set(raw[:3])
    src = tmp_path / "h.csv"
    pl.DataFrame({"user": ["a", "b"], "history": [" ".join(raw[:3]), raw[7]]}).write_csv(src)
    out = tmp_path / "top.parquet"
    batch = subprocess.run([str(cli), "recommend", name, "--histories", str(src), "--out",
                            str(out), "-k", "4", "--runs-dir", str(runs)],
                           capture_output=True, text=True)
    assert batch.returncode == 0, batch.stderr
    top = pl.read_parquet(out)
    assert top.shape == (8, 5) and top.filter(pl.col("user") == "a")["item"].to_list() == \
        [r["item"] for r in recs[:4]]
    bad = subprocess.run([str(cli), "recommend", name, "--history", "nope", "--runs-dir",
                          str(runs)], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        f"error: 1 item id(s) not in dataset {synthetic_dataset.name}: nope "
        "(--skip-unknown leaves them out)"]


def test_the_readme_example_runs_without_prefect(trained, synthetic_dataset, tmp_path):
    from embeddings_store import EmbeddingStore, ManifestInput, Producer

    _, runs, name = trained
    store = EmbeddingStore(tmp_path / "store")
    n = synthetic_dataset.n_items
    vecs = np.random.default_rng(0).normal(size=(n, 8)).astype(np.float32)
    store.write(synthetic_dataset.name, "items/random", np.arange(1, n + 1), vecs,
                ManifestInput(dataset_fingerprint=synthetic_dataset.fingerprint,
                              producer=Producer(generator="test")))
    raw = synthetic_dataset.items.sort("item_id")["raw_id"].to_list()
    data_dir = synthetic_dataset.path.parents[1]
    probe = ("import runpy, sys; sys.argv = ['downstream.py'] + sys.argv[1:]; "
             f"runpy.run_path({str(ROOT / 'examples' / 'downstream.py')!r}, run_name='__main__'); "
             "assert 'prefect' not in sys.modules, 'the API imported Prefect'")
    done = subprocess.run(
        [sys.executable, "-c", probe, "--store", str(tmp_path / "store"), "--data-dir",
         str(data_dir), "--kind", f"{synthetic_dataset.name}/items/random",
         "--run", str(runs / name), "--history", ",".join(raw[:3])],
        capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].endswith(f": {n} items x 8 dims")
    assert lines[1] == "embedding rows of the history: torch.Size([3, 8])"
    # the neighbours are the exact cosine top-5 of item 1 (the store's default metric)
    unit = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    sims = unit @ unit[0]
    sims[0] = -np.inf
    assert lines[2] == f"nearest to {raw[0]} : {[raw[i] for i in np.argsort(-sims)[:5]]}"
    assert len(lines) == 3 + 10


def test_export_item_table_lineage_encoder_parity_and_ann(trained, synthetic_dataset, tmp_path):
    from embeddings_store import EmbeddingStore, ManifestInput, Producer
    from models.sequences import pad_left
    from pipeline.recommend import export_encoder, export_item_table

    run, _, _ = trained
    store = EmbeddingStore(tmp_path / "store")
    n = synthetic_dataset.n_items
    # pretend the run was trained from a stored kind: the export names it as its parent
    up = store.write(synthetic_dataset.name, "items/upstream", np.arange(1, n + 1),
                     np.ones((n, 4), np.float32),
                     ManifestInput(dataset_fingerprint=synthetic_dataset.fingerprint,
                                   producer=Producer(generator="test")))
    run.card["embedding"] = str(up)
    ref = export_item_table(run, store)
    m = store.manifest(ref)
    assert ref.startswith(f"{synthetic_dataset.name}/items/run-{run.folder.name}@")
    assert [(p.kind, p.version) for p in m.parents] == [("items/upstream", up.version)]
    assert m.producer.generator == "export" and m.producer.config["run"] == run.name
    ids, vecs = store.read(ref)
    with torch.no_grad():
        table = run.model.item_emb.scoring_table()[1:].numpy()
    assert np.array_equal(vecs[np.argsort(ids)], table)

    path, gap = export_encoder(run, tmp_path / "encoder.pt2")
    assert gap <= 1e-5
    program = torch.export.load(str(path)).module()
    seqs = [np.asarray(s[:-1]) for s in synthetic_dataset.sequences[10:17]]  # another batch size
    batch = pad_left(seqs, run.config.model.max_len)
    with torch.no_grad():
        assert torch.allclose(program(batch), run.model(batch), atol=1e-5, rtol=0)

    raw = synthetic_dataset.items.sort("item_id")["raw_id"].to_list()
    history = raw[:3]
    via_index = run.recommend_ann(history, store.open_index(ref), k=10)
    exact = run.recommend(history, k=10)
    assert [r["item"] for r in via_index] == [r["item"] for r in exact]
    assert np.allclose([r["score"] for r in via_index], [r["score"] for r in exact], atol=1e-4)


# ---- ONNX export (issue #18) --------------------------------------------------------------


def _histories(dataset, start: int, size: int) -> list[np.ndarray]:
    """`size` real histories, some cut short and one empty: left padding of every length."""
    cut = [None, 3, 1, 0]  # whole, 3 items, 1 item, none
    return [np.asarray(s[:-1])[: cut[i % 4]]
            for i, s in enumerate(dataset.sequences[start:start + size])]


def _ort_session(path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_onnx_encoder_is_the_models_forward_on_any_batch_size(trained, synthetic_dataset, tmp_path):
    from models.sequences import pad_left
    from pipeline.recommend import export_onnx

    run, _, _ = trained
    path, gap = export_onnx(run, tmp_path / "encoder.onnx")
    assert path == tmp_path / "encoder.onnx" and 0 <= gap <= 1e-5
    assert [p.name for p in tmp_path.iterdir()] == ["encoder.onnx"]  # nothing left aside
    session = _ort_session(path)
    (seq_in,), (user_out,) = session.get_inputs(), session.get_outputs()
    assert (seq_in.name, seq_in.type, user_out.name) == ("seq", "tensor(int64)", "user")
    assert isinstance(seq_in.shape[0], str) and seq_in.shape[1] == run.config.model.max_len
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["llm4srs.run"] == run.name
    assert meta["llm4srs.fingerprint"] == synthetic_dataset.fingerprint
    for size in (1, 5):  # traced on 4 users: the batch axis is free
        batch = pad_left(_histories(synthetic_dataset, 30, size), run.config.model.max_len)
        user = session.run(["user"], {"seq": batch.numpy()})[0]
        with torch.no_grad():
            want = run.model.forward(batch).numpy()  # the user representation
        assert user.shape == want.shape == (size, run.config.model.dim)
        assert np.abs(user - want).max() <= 1e-5


def test_onnx_export_refuses_a_gap_above_the_tolerance(trained, tmp_path, monkeypatch):
    import pipeline.recommend as recommend

    run, _, _ = trained
    monkeypatch.setattr(recommend, "PARITY_TOL", -1.0)  # any gap is too large
    with pytest.raises(RuntimeError, match=r"differs from PyTorch by .*not written"):
        recommend.export_onnx(run, tmp_path / "encoder.onnx")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("backbone, method", [("gru4rec", "srs"), ("bert4rec", "srs"),
                                              ("sasrec", "llmesr"), ("gru4rec", "llmesr")])
def test_other_backbones_and_llmesr_export_with_parity(backbone, method, synthetic_dataset,
                                                        tmp_path):
    """A run folder as train_one leaves it (untrained weights), loaded by TrainedRun.load
    (LLM-ESR from its checkpoint alone, no store), then both exports. GRU4Rec packs its
    sequences, which torch.export cannot trace: the exports run its GRU unpacked."""
    from models.sequences import pad_left
    from pipeline import checkpoint
    from pipeline.config import load_train_config
    from pipeline.recommend import TrainedRun, export_encoder, export_onnx
    from pipeline.runs import write_run_card
    from pipeline.train import build_model

    torch.manual_seed(0)
    n = synthetic_dataset.n_items
    cfg = load_train_config(backbone, {"model.dim": 16, "model.max_len": 20}, method=method)
    if method == "llmesr":
        from pipeline.methods.llmesr.train import build_llmesr

        vectors = np.random.default_rng(0).normal(size=(n, 24)).astype(np.float32)
        model, card_method = build_llmesr(cfg, vectors), cfg.llmesr.variant()
    else:
        model, card_method = build_model(cfg, n), "id"
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "config.json").write_text(cfg.model_dump_json())
    checkpoint.save(folder / "best.pt", {"model": model.state_dict()})
    write_run_card(folder, synthetic_dataset, method=card_method, backbone=backbone, seed=0,
                   config_hash=cfg.config_hash())
    run = TrainedRun.load(folder)
    batch = pad_left(_histories(synthetic_dataset, 40, 5), 20)
    with torch.no_grad():
        assert torch.equal(run.model(batch), model.eval()(batch))  # loaded = saved
    raw = synthetic_dataset.items.sort("item_id")["raw_id"].cast(str).to_list()
    assert len(run.recommend(raw[:3], k=5)) == 5  # LLM-ESR runs are served too

    pt2, pt2_gap = export_encoder(run, folder / "encoder.pt2")
    onnx, onnx_gap = export_onnx(run, folder / "encoder.onnx")
    assert pt2_gap <= 1e-5 and onnx_gap <= 1e-5
    session, program = _ort_session(onnx), torch.export.load(str(pt2)).module()
    for size in (1, 5):
        seq = batch[:size]
        with torch.no_grad():
            want = run.model(seq)
            assert (program(seq) - want).abs().max() <= 1e-5
        assert np.abs(session.run(["user"], {"seq": seq.numpy()})[0] - want.numpy()).max() <= 1e-5


def test_export_cli_lists_both_encoders_and_their_gaps(trained, tmp_path, monkeypatch, capsys):
    from llm4srs.cli import main

    run, runs, name = trained
    monkeypatch.setattr(sys, "argv", ["llm4srs", "export", name, "--runs-dir", str(runs),
                                      "--store", str(tmp_path / "store"), "--json"])
    with pytest.raises(SystemExit) as exc:
        main()
    out = capsys.readouterr()
    assert exc.value.code == 0, out.err
    printed = json.loads(out.out)
    assert printed["onnx"] == str(run.folder / "encoder.onnx")
    assert printed["encoder"] == str(run.folder / "encoder.pt2")
    assert 0 <= printed["onnx_max_abs_difference"] <= 1e-5
    assert 0 <= printed["max_abs_difference"] <= 1e-5


def test_the_onnx_example_ranks_as_recommend_does(trained, synthetic_dataset, tmp_path,
                                                  monkeypatch):
    from embeddings_store import EmbeddingStore
    from pipeline.recommend import export_item_table, export_onnx

    run, _, _ = trained
    monkeypatch.setitem(run.card, "embedding", None)  # an earlier test named a parent
    store = EmbeddingStore(tmp_path / "store")
    export_item_table(run, store)
    path, _ = export_onnx(run, tmp_path / "encoder.onnx")
    raw = synthetic_dataset.items.sort("item_id")["raw_id"].cast(str).to_list()
    history = raw[4:9]
    probe = ("import runpy, sys; sys.argv = ['onnx_encoder.py'] + sys.argv[1:]; "
             f"runpy.run_path({str(ROOT / 'examples' / 'onnx_encoder.py')!r}, run_name='__main__'); "
             "assert 'torch' not in sys.modules, 'the ONNX example imported PyTorch'")
    done = subprocess.run(
        [sys.executable, "-c", probe, "--onnx", str(path), "--store", str(tmp_path / "store"),
         "--data-dir", str(synthetic_dataset.path.parents[1]), "--history", ",".join(history)],
        capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()]
    exact = run.recommend(history, k=10)
    assert [r[1] for r in rows] == [r["item"] for r in exact]
    assert np.allclose([float(r[2]) for r in rows], [r["score"] for r in exact], atol=1e-4)
