"""E4SRec end to end on a tmp store: the flow's train task, the head export, the CLI errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from embeddings_store import EmbeddingStore, ManifestInput, Producer
from pipeline.errors import InputError
from pipeline.results import COLUMNS

TINY = {"batch_size": 8, "epochs": 1, "max_samples_per_epoch": 24, "warmup_steps": 1,
        "valid_users": 30, "validations": 1, "eval.batch_size": 100}


def write_id_table(store: EmbeddingStore, dataset, fingerprint: str | None = None, dim: int = 8):
    ids = np.arange(1, dataset.n_items + 1)
    vectors = np.random.default_rng(0).normal(size=(len(ids), dim)).astype(np.float32)
    manifest = ManifestInput(dataset_fingerprint=fingerprint or dataset.fingerprint,
                             producer=Producer(generator="sasrec-id"), metric="ip")
    return store.write(dataset.name, "items/sasrec-id", ids, vectors, manifest, expected_ids=ids)


def test_train_task_rows_and_head_export(synthetic_dataset, e4s_spec, tmp_path, monkeypatch):
    from flows.e4srec import train

    monkeypatch.setenv("LLM4SRS_CACHE_DIR", str(tmp_path / "cache"))
    store = EmbeddingStore(tmp_path / "store")
    id_ref = str(write_id_table(store, synthetic_dataset))
    out = train.fn(str(synthetic_dataset.path), id_ref, e4s_spec.model_dump(mode="json"), TINY,
                   0, str(tmp_path / "runs"), str(store.root))
    rows, info = out["rows"], out["info"]
    assert rows and set(COLUMNS) <= set(rows[0])
    assert {r["method"] for r in rows} == {"e4srec"}
    assert {r["backbone"] for r in rows} == {e4s_spec.short_name}
    assert {r["embedding"] for r in rows} == {id_ref}
    assert {r["protocol"] for r in rows} == {"full", "s100"}
    assert {(r["protocol"], r["group"]) for r in rows} >= {("full", "tail_item"), ("s100", "overall")}
    assert info["steps_run"] == 3 and info["max_minutes"] == 25 and not info["stopped_by_budget"]
    # the head: rows for items 1..N, the LLM's width, lineage to the ID table, LoRA hash
    head_ref = info["head_ref"]
    ids, vectors = store.read(head_ref)
    assert np.array_equal(ids, np.arange(1, synthetic_dataset.n_items + 1))
    assert vectors.shape == (synthetic_dataset.n_items, 32)
    manifest = store.manifest(head_ref)
    assert manifest.kind == "items/e4srec-head" and manifest.metric == "ip"
    assert manifest.producer.adapter_hash == info["adapter_hash"] and len(info["adapter_hash"]) == 64
    assert [p.version for p in manifest.parents] == [id_ref.split("@")[1]]
    assert manifest.metrics["test_full_ndcg@10"] == pytest.approx(
        next(r["value"] for r in rows if (r["protocol"], r["group"], r["metric"])
             == ("full", "overall", "ndcg@10")))
    assert manifest.producer.config["e4srec"]["max_samples_per_epoch"] == 24


def test_id_table_of_another_dataset_is_refused(synthetic_dataset, tmp_path):
    from pipeline.methods.e4srec.run import load_id_table

    store = EmbeddingStore(tmp_path / "store")
    write_id_table(store, synthetic_dataset, fingerprint="0" * 16)
    with pytest.raises(InputError, match="fingerprint"):
        load_id_table(synthetic_dataset, store)
    with pytest.raises(InputError, match="llm4srs embed sasrec-id --dataset synthetic"):
        load_id_table(synthetic_dataset, EmbeddingStore(tmp_path / "empty"))


def _cli(args: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    from llm4srs.cli import main

    monkeypatch.setattr(sys, "argv", ["llm4srs", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def test_cli_without_sasrec_id_says_what_to_run(tmp_path, monkeypatch, capsys):
    code, out, err = _cli(["e4srec", "--dataset", "synthetic", "--store", str(tmp_path / "store"),
                           "--data-dir", str(tmp_path / "data"), "--runs-dir", str(tmp_path / "runs")],
                          monkeypatch, capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("error:")
    assert "run `llm4srs embed sasrec-id --dataset synthetic` first" in err
    assert not (tmp_path / "data").exists() and not (tmp_path / "runs").exists()


def test_cli_bad_override_is_one_line(tmp_path, monkeypatch, capsys):
    code, _, err = _cli(["e4srec", "--set", "model.lora_dropout=2", "--store", str(tmp_path)],
                        monkeypatch, capsys)
    assert code == 2 and "model.lora_dropout" in err and len(err.strip().splitlines()) == 1
