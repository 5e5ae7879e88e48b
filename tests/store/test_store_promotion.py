"""@production moves only to a version that wins on validation; rollback gives it back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from embeddings_store import EmbeddingStore, ManifestInput, Producer, StoreError, promotion


def _put(store: EmbeddingStore, kind: str, seed: int) -> str:
    vecs = np.random.default_rng(seed).normal(size=(6, 4)).astype(np.float32)
    ref = store.write("ds", kind, np.arange(1, 7), vecs,
                      ManifestInput(dataset_fingerprint="f" * 16, producer=Producer(generator="t")))
    return str(ref)


def test_only_a_better_version_moves_production_and_rollback_restores(tmp_path: Path) -> None:
    store = EmbeddingStore(tmp_path / "store")
    a, b, c = _put(store, "items/a", 0), _put(store, "items/a", 1), _put(store, "items/b", 2)
    first = promotion.promote(store, a, "valid full ndcg@10", 0.10, {"runs": ["r0"]})
    assert first.moved and str(store.resolve("ds/items/a@production")) == a
    worse = promotion.promote(store, b, "valid full ndcg@10", 0.09)
    assert not worse.moved and "not above 0.1000" in worse.reason
    tie = promotion.promote(store, b, "valid full ndcg@10", 0.10)
    assert not tie.moved
    assert str(store.resolve("ds/items/a@production")) == a  # the worse one did not move it
    better = promotion.promote(store, c, "valid full ndcg@10", 0.12, {"runs": ["r1"]})
    assert better.moved and str(store.resolve("ds/items/b@production")) == c
    with pytest.raises(StoreError):  # the tag left the other kind: one holder per dataset
        store.resolve("ds/items/a@production")
    record = promotion.holder(store, "ds")
    assert record["ref"] == c and record["value"] == 0.12 and record["evidence"] == {"runs": ["r1"]}
    with pytest.raises(StoreError, match="won on valid full ndcg@10, not test"):
        promotion.promote(store, b, "test", 0.5)
    back = promotion.rollback(store, "ds")
    assert back.moved and str(store.resolve("ds/items/a@production")) == a
    with pytest.raises(StoreError):
        store.resolve("ds/items/b@production")
    assert [r["ref"] for r in promotion.history(store, "ds")] == [a]
    with pytest.raises(StoreError, match="no earlier @production"):
        promotion.rollback(store, "ds")


def test_store_promote_cli(tmp_path: Path) -> None:
    store = EmbeddingStore(tmp_path / "store")
    a, b = _put(store, "items/a", 0), _put(store, "items/a", 1)
    cli = [str(Path(sys.executable).with_name("llm4srs")), "store", "promote"]
    root = ["--root", str(tmp_path / "store")]

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*cli, *args, *root], capture_output=True, text=True)

    assert run(a, "--value", "0.2", "--evidence", '{"seeds": [0, 1, 2]}').stdout.startswith("promoted:")
    kept = run(b, "--value", "0.1", "--json")
    assert json.loads(kept.stdout)["moved"] is False
    assert json.loads(run("--show", "ds", "--json").stdout)[0]["evidence"] == {"seeds": [0, 1, 2]}
    bad = run(b, "--value", "0.3", "--evidence", "[1]")
    assert bad.returncode == 2 and bad.stderr.strip() == "error: --evidence must be a JSON object"
    assert run(b, "--value", "0.3").stdout.startswith("promoted:")
    assert run("--rollback", "ds").stdout.startswith("promoted:")
    assert str(store.resolve("ds/items/a@production")) == a
