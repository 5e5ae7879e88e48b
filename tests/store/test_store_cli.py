"""``llm4srs store ...`` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from store_helpers import make_data
from typer.testing import CliRunner

from embeddings_store import EmbeddingStore, IndexConfig, ManifestInput, VersionRef
from llm4srs.store_cli import app

runner = CliRunner()


@pytest.fixture
def filled(store: EmbeddingStore, minput: ManifestInput) -> tuple[EmbeddingStore, list[VersionRef]]:
    ids, x = make_data(200, 8, seed=4)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    refs = [
        store.write(
            "movielens-100k", "items/tslrec", ids, x, minput, index=IndexConfig(type="flat")
        )
        for _ in range(2)
    ]
    refs.append(store.write("movielens-100k", "users/tslrec", ids, x, minput))
    return store, refs


def _invoke(store: EmbeddingStore, *args: str) -> object:
    return runner.invoke(app, [*args, "--root", str(store.root)])


def test_ls_json(filled: tuple[EmbeddingStore, list[VersionRef]]) -> None:
    store, refs = filled
    res = _invoke(store, "ls", "--json")
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert [r["version"] for r in rows] == [r.version for r in refs]
    for row in rows:
        assert {
            "dataset",
            "kind",
            "version",
            "current",
            "count",
            "dim",
            "created_at",
            "tags",
        } <= row.keys()
        assert (row["dataset"], row["count"], row["dim"]) == ("movielens-100k", 200, 8)
    assert [r["current"] for r in rows] == [False, True, True]


def test_ls_uses_env_root(
    filled: tuple[EmbeddingStore, list[VersionRef]], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _ = filled
    monkeypatch.setenv("LLM4SRS_STORE", str(store.root))
    res = runner.invoke(app, ["ls", "--json"])
    assert res.exit_code == 0 and len(json.loads(res.stdout)) == 3


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("tslrec", "invalid reference"),
        ("items/nothing", "no dataset"),
        ("items/tslrec@nope", "neither a version id nor a tag"),
        ("other/items/tslrec", "no versions"),
    ],
)
def test_bad_ref_is_one_line_and_exit_2(
    filled: tuple[EmbeddingStore, list[VersionRef]], ref: str, message: str
) -> None:
    store, _ = filled
    res = _invoke(store, "show", ref)
    assert res.exit_code == 2
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_show_json_and_search(
    filled: tuple[EmbeddingStore, list[VersionRef]], tmp_path: Path
) -> None:
    store, refs = filled
    res = _invoke(store, "show", "items/tslrec", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["version"] == refs[1].version
    res = _invoke(store, "search", "items/tslrec", "--id", "1007", "-k", "3", "--json")
    assert res.exit_code == 0, res.output
    hits = json.loads(res.stdout)["results"][0]
    assert len(hits) == 3 and 1007 not in [h["id"] for h in hits]
    assert all((h["id"] - 1000) % 7 == 0 for h in hits)  # ids, not row positions
    ids, x = store.read(refs[1])
    np.save(tmp_path / "q.npy", x[5])
    res = _invoke(
        store,
        "search",
        "items/tslrec",
        "--vector-file",
        str(tmp_path / "q.npy"),
        "-k",
        "1",
        "--json",
    )
    assert json.loads(res.stdout)["results"][0][0]["id"] == int(ids[5])
    res = _invoke(store, "search", "items/tslrec", "--id", "5")
    assert res.exit_code == 2 and "no vector with id 5" in res.stderr


def test_tag_rollback_gc_verify(filled: tuple[EmbeddingStore, list[VersionRef]]) -> None:
    store, refs = filled
    assert _invoke(store, "tag", f"items/tslrec@{refs[0].version}", "paper").exit_code == 0
    res = _invoke(store, "rollback", "movielens-100k/items/tslrec")
    assert res.exit_code == 0 and refs[0].version in res.stdout
    assert _invoke(store, "verify", "items/tslrec@paper").exit_code == 0
    res = _invoke(store, "gc", "items/tslrec", "--keep", "0", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["movielens-100k/items/tslrec"][
        "removed"
    ] == [refs[1].version]
    (refs[0].path / "vectors.parquet").write_bytes(b"garbage")
    res = _invoke(store, "verify", "items/tslrec")
    assert res.exit_code == 1 and "FAILED" in res.stdout
    res = _invoke(store, "tag", "items/tslrec", "paper", "--delete")
    assert res.exit_code == 0
