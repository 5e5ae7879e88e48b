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
