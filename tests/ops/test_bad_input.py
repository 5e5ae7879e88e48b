"""Bad input through the real CLI entry (`llm4srs.cli.main`, in-process): every row exits
non-zero with ONE stderr line `error: …` naming the file, column, id or option, prints
nothing on stdout, starts no Prefect flow, and leaves the store and the prepared datasets
exactly as they were (no temp folders, no half-written dataset or version).
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from llm4srs.cli import main

pytestmark = pytest.mark.ops


@dataclass
class World:
    """A user's folder: a tiny table dataset (no item text), prepared, and a store with
    one good version of `items/good` plus two that do not fit it."""

    root: Path
    events: Path
    data: Path
    store: Path

    @property
    def spec(self) -> str:
        return f"table:{self.events}"

    def common(self) -> list[str]:
        return ["--dataset", self.spec, "--data-dir", str(self.data)]


def _write_world(root: Path) -> World:
    from embeddings_store import EmbeddingStore, ManifestInput, Producer
    from pipeline.data.config import resolve_dataset
    from pipeline.data.prepare import prepare_dataset

    root.mkdir(parents=True)
    events = root / "events.csv"
    rows = [(u, f"i{(u * 3 + k) % 12:02d}", k) for u in range(1, 9) for k in range(5)]
    pl.DataFrame(rows, schema=["user_id", "item_id", "timestamp"], orient="row").write_csv(events)
    w = World(root, events, root / "data", root / "store")
    ds = prepare_dataset(resolve_dataset(w.spec), w.data)
    store = EmbeddingStore(w.store)
    n = ds.n_items
    rng = np.random.default_rng(0)

    def put(kind: str, ids: np.ndarray, dim: int) -> None:
        info = ManifestInput(dataset_fingerprint=ds.fingerprint, producer=Producer(generator="test"))
        store.write(ds.name, kind, ids, rng.normal(size=(len(ids), dim)).astype(np.float32), info)

    put("items/good", np.arange(1, n + 1), 24)
    put("items/partial", np.arange(1, n // 2 + 1), 24)  # half the catalogue
    put("items/narrow", np.arange(1, n + 1), 4)  # too narrow to PCA to model.dim 16
    return w


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` with the sha256 of its bytes."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _vectors_file(path: Path, ids: list, vectors: list) -> Path:
    pl.DataFrame({"id": ids, "vector": vectors}).write_parquet(path)
    return path


def _raw_ids(w: World) -> list[str]:
    from pipeline.data.dataset import Dataset

    prepared = next((w.data / "prepared").iterdir())
    return Dataset.load(prepared).items["raw_id"].to_list()


def _import(w: World, file: Path, *extra: str) -> list[str]:
    return ["store", "import", "items/mine", str(file), "--dataset", w.spec, "--data-dir",
            str(w.data), "--root", str(w.store), *extra]


def _embed(w: World, generators: str, model: str, *extra: str) -> list[str]:
    return ["embed", generators, *w.common(), "--store", str(w.store), "--model", model,
            "--runs-dir", str(w.root / "runs"), *extra]


def _train(w: World, kind: str) -> list[str]:
    return ["train", *w.common(), "--store", str(w.store), "--embeddings", kind,
            "--set", "model.dim=16", "--runs-dir", str(w.root / "runs")]


# ---- the rows: (id, args(world), words the one line must contain) -------------------------

def _missing_file(w: World) -> list[str]:
    return ["prepare", "--dataset", f"table:{w.root / 'nope.csv'}", "--data-dir", str(w.data)]


def _truncated_parquet(w: World) -> list[str]:
    good = w.root / "events.parquet"
    pl.read_csv(w.events).write_parquet(good)
    bad = w.root / "cut.parquet"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    return ["prepare", "--dataset", f"table:{bad}", "--data-dir", str(w.data)]


def _garbage_json_gz(w: World) -> list[str]:
    folder = w.root / "amazon"
    folder.mkdir()
    (folder / "reviews_Toys_5.json.gz").write_bytes(b"\x1f\x8b not really gzip at all")
    (folder / "meta_Toys.json.gz").write_bytes(gzip.compress(b'{"asin": "x"}\n'))
    return ["prepare", "--dataset", f"amazon:{folder}", "--data-dir", str(w.data)]


def _missing_mapped_column(w: World) -> list[str]:
    cfg = w.root / "mapped.yaml"
    cfg.write_text(f"source: table\npath: {w.events}\ncolumns:\n  user: customer\n")
    return ["prepare", "--dataset", str(cfg), "--data-dir", str(w.data)]


def _latin1_csv(w: World) -> list[str]:
    path = w.root / "latin.csv"
    path.write_bytes("user_id,item_id,timestamp\n1,café,1\n1,b,2\n1,c,3\n".encode("latin-1"))
    return ["prepare", "--dataset", f"table:{path}", "--data-dir", str(w.data)]


def _empty_sequences(w: World) -> list[str]:
    folder = w.root / "lcrec"
    folder.mkdir()
    (folder / "Shop.inter.json").write_text('{"0": [], "1": []}')
    (folder / "Shop.item.json").write_text('{"0": {"title": "a lamp"}}')
    return ["prepare", "--dataset", f"lcrec:{folder}", "--data-dir", str(w.data)]


def _empty_after_filtering(w: World) -> list[str]:
    cfg = w.root / "strict.yaml"
    cfg.write_text(f"source: table\npath: {w.events}\nuser_core: 50\n")
    return ["prepare", "--dataset", str(cfg), "--data-dir", str(w.data)]


def _import_duplicate_ids(w: World) -> list[str]:
    raw = _raw_ids(w)
    ids = [*raw, raw[0]]
    return _import(w, _vectors_file(w.root / "v.parquet", ids, [[0.5, 0.5]] * len(ids)))


def _import_unknown_ids(w: World) -> list[str]:
    raw = _raw_ids(w)
    ids = [*raw[:-1], "not-an-item"]
    return _import(w, _vectors_file(w.root / "v.parquet", ids, [[0.5, 0.5]] * len(ids)))


def _import_outside_catalogue(w: World) -> list[str]:
    n = len(_raw_ids(w))
    ids = [*range(1, n), n + 7]
    return _import(w, _vectors_file(w.root / "v.parquet", ids, [[0.5, 0.5]] * n), "--ids", "internal")


def _import_nan(w: World) -> list[str]:
    raw = _raw_ids(w)
    vectors = [[0.5, 0.5]] * len(raw)
    vectors[3] = [float("nan"), 0.5]
    return _import(w, _vectors_file(w.root / "v.parquet", raw, vectors))


def _import_ragged(w: World) -> list[str]:
    raw = _raw_ids(w)
    vectors = [[0.5, 0.5]] * (len(raw) - 1) + [[0.5, 0.5, 0.5]]
    return _import(w, _vectors_file(w.root / "v.parquet", raw, vectors))


def _import_missing_column(w: World) -> list[str]:
    path = w.root / "v.parquet"
    pl.DataFrame({"item": _raw_ids(w), "emb": [[0.5, 0.5]] * len(_raw_ids(w))}).write_parquet(path)
    return _import(w, path)


def _search_nan_query(w: World) -> list[str]:
    q = np.full((1, 24), np.nan, dtype=np.float32)
    np.save(w.root / "q.npy", q)
    return ["store", "search", "events/items/good", "--vector-file", str(w.root / "q.npy"),
            "--root", str(w.store)]


def _search_wrong_dim(w: World) -> list[str]:
    np.save(w.root / "q.npy", np.ones((1, 7), dtype=np.float32))
    return ["store", "search", "events/items/good", "--vector-file", str(w.root / "q.npy"),
            "--root", str(w.store)]


def _train_partial_kind(w: World) -> list[str]:
    return _train(w, "items/partial")


def _train_narrow_kind(w: World) -> list[str]:
    return _train(w, "items/narrow")


def _train_unknown_kind(w: World) -> list[str]:
    return _train(w, "items/never-written")


def _unknown_model_id(w: World) -> list[str]:
    return _embed(w, "semantic", "does-not-exist/at-all")


def _missing_model_path(w: World) -> list[str]:
    return _embed(w, "semantic", str(w.root / "models" / "nothing-here"))


def _garbage_gguf(w: World) -> list[str]:
    path = w.root / "junk.gguf"
    path.write_bytes(b"GGUF\x03\x00\x00\x00" + bytes(range(256)) * 4)
    return _embed(w, "semantic", str(path))


def _not_a_gguf(w: World) -> list[str]:
    path = w.root / "photo.gguf"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    return _embed(w, "llmemb", str(path))


def _unsupported_gguf(w: World) -> list[str]:
    import gguf

    path = w.root / "odd.gguf"
    writer = gguf.GGUFWriter(str(path), "notamodel")
    writer.add_name("odd")
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return _embed(w, "semantic", str(path))


def _train_config(w: World, text: str) -> list[str]:
    path = w.root / "preset.yaml"
    path.write_text(text)
    return ["train", *w.common(), "--config", str(path), "--runs-dir", str(w.root / "runs")]


def _broken_yaml_config(w: World) -> list[str]:
    return _train_config(w, "lr: [0.001\nepochs: 3\n")


def _list_yaml_config(w: World) -> list[str]:
    return _train_config(w, "- lr: 0.001\n")


def _train_set(*sets: str):
    def args(w: World) -> list[str]:
        extra = [a for s in sets for a in ("--set", s)]
        return ["train", *w.common(), *extra, "--runs-dir", str(w.root / "runs")]
    return args


def _train_seeds(seeds: str):
    def args(w: World) -> list[str]:
        return ["train", *w.common(), "--seeds", seeds, "--runs-dir", str(w.root / "runs")]
    return args


def _train_bad_dataset_file(w: World) -> list[str]:
    cfg = w.root / "mapped.yaml"
    cfg.write_text(f"source: table\npath: {w.events}\ncolumns:\n  user: customer\n")
    return ["train", "--dataset", str(cfg), "--data-dir", str(w.data),
            "--runs-dir", str(w.root / "runs")]


def _runs_dir_is_a_file(w: World) -> list[str]:
    (w.root / "runs-file").write_text("not a folder")
    return ["train", *w.common(), "--runs-dir", str(w.root / "runs-file")]


def _data_dir_under_a_file(w: World) -> list[str]:
    (w.root / "plain").write_text("not a folder")
    return ["prepare", "--dataset", w.spec, "--data-dir", str(w.root / "plain" / "data")]


def _symlink_loop_dataset(w: World) -> list[str]:
    (w.root / "loop-a").symlink_to(w.root / "loop-b")
    (w.root / "loop-b").symlink_to(w.root / "loop-a")
    return ["prepare", "--dataset", f"table:{w.root / 'loop-a'}", "--data-dir", str(w.data)]


def _deeply_nested_json(w: World) -> list[str]:
    folder = w.root / "lcrec"
    folder.mkdir()
    deep = '{"a":' * 200_000 + "1" + "}" * 200_000
    (folder / "Deep.inter.json").write_text(deep)
    (folder / "Deep.item.json").write_text("{}")
    return ["prepare", "--dataset", f"lcrec:{folder}", "--data-dir", str(w.data)]


def _dataset_name_the_store_refuses(w: World) -> list[str]:
    odd = w.root / "my events.csv"
    odd.write_bytes(w.events.read_bytes())
    return ["prepare", "--dataset", f"table:{odd}", "--data-dir", str(w.data)]


def _llmemb_without_text(w: World) -> list[str]:
    return _embed(w, "llmemb", "minilm")


def _semantic_without_text(w: World) -> list[str]:
    return _embed(w, "semantic", "minilm")


ROWS: list[tuple[str, Callable[[World], list[str]], list[str]]] = [
    ("missing-file", _missing_file, ["nope.csv", "does not exist"]),
    ("truncated-parquet", _truncated_parquet, ["cut.parquet", "cannot read"]),
    ("garbage-json-gz", _garbage_json_gz, ["reviews_Toys_5.json.gz", "not a readable gzip"]),
    ("missing-mapped-column", _missing_mapped_column, ["events.csv", "customer"]),
    ("non-utf8-csv", _latin1_csv, ["latin.csv", "utf-8"]),
    ("empty-sequences", _empty_sequences, ["Shop.inter.json", "no user"]),
    ("empty-after-filtering", _empty_after_filtering, ["empty after filtering", "user_core=50"]),
    ("import-duplicate-ids", _import_duplicate_ids, ["v.parquet", "more than once"]),
    ("import-unknown-ids", _import_unknown_ids, ["v.parquet", "'not-an-item'", "not items"]),
    ("import-ids-outside-catalogue", _import_outside_catalogue, ["v.parquet", "outside items 1.."]),
    ("import-nan-vectors", _import_nan, ["v.parquet", "NaN"]),
    ("import-ragged-vectors", _import_ragged, ["v.parquet", "lengths [2, 3]"]),
    ("import-missing-column", _import_missing_column, ["v.parquet", "lacks column", "'id'"]),
    ("search-nan-query", _search_nan_query, ["q.npy", "NaN"]),
    ("search-wrong-dim", _search_wrong_dim, ["shape (1, 7)", "24"]),
    ("train-kind-wrong-count", _train_partial_kind, ["items/partial", "vectors for a dataset of"]),
    ("train-kind-too-narrow", _train_narrow_kind, ["items/narrow", "model.dim=16"]),
    ("train-kind-unknown", _train_unknown_kind, ["items/never-written"]),
    ("model-id-unknown-offline", _unknown_model_id, ["does-not-exist/at-all", "HF_HUB_OFFLINE"]),
    ("model-path-missing", _missing_model_path, ["nothing-here", "does not exist"]),
    ("gguf-garbage", _garbage_gguf, ["junk.gguf", "not a readable GGUF"]),
    ("gguf-not-gguf", _not_a_gguf, ["photo.gguf", "no GGUF magic"]),
    ("gguf-unsupported-architecture", _unsupported_gguf, ["odd.gguf", "'notamodel'", "llama"]),
    ("config-broken-yaml", _broken_yaml_config, ["preset.yaml", "not valid YAML"]),
    ("config-not-a-mapping", _list_yaml_config, ["preset.yaml", "must be a mapping", "list"]),
    ("heads-do-not-divide-dim", _train_set("model.heads=3", "model.dim=8"),
     ["model.heads=3", "model.dim=8"]),
    ("eval-k-zero", _train_set("eval.ks=[0]"), ["eval.ks.0", "greater than or equal to 1"]),
    ("max-len-huge", _train_set("model.max_len=100000"), ["model.max_len", "8192"]),
    ("seeds-empty", _train_seeds(""), ["--seeds", "at least one"]),
    ("seeds-negative", _train_seeds("-1"), ["--seeds", "-1", "outside"]),
    ("seeds-too-large", _train_seeds(str(2**32)), ["--seeds", str(2**32), "outside"]),
    ("seeds-repeated", _train_seeds("1,1"), ["--seeds", "repeats"]),
    # 12 items, 5 in every history: 7 unseen, fewer than the default 100 sampled negatives.
    ("catalogue-smaller-than-negatives", _train_seeds("0"),
     ["events", "7 items outside", "s100", "--set n_negatives=7"]),
    ("train-bad-dataset-file", _train_bad_dataset_file, ["events.csv", "customer"]),
    ("runs-dir-is-a-file", _runs_dir_is_a_file, ["--runs-dir", "runs-file", "is a file"]),
    ("loss-larger-than-memory", _train_set("batch_size=10000000", "model.max_len=8192",
                                           "n_negatives=5"),
     ["ce loss needs", "GiB free", "--set model.loss=sampled"]),
    ("data-dir-under-a-file", _data_dir_under_a_file, ["--data-dir", "plain", "is a file"]),
    ("dataset-symlink-loop", _symlink_loop_dataset, ["loop-a", "Symlink loop"]),
    ("deeply-nested-json", _deeply_nested_json, ["Deep.inter.json", "nested too deeply"]),
    # prepare accepted this name, then `store import`/`embed` refused it after the work
    ("dataset-name-the-store-refuses", _dataset_name_the_store_refuses,
     ["'my events'", "my events.csv", "name:"]),
    ("llmemb-without-text", _llmemb_without_text, ["events", "no item text", "llmemb"]),
    ("semantic-without-text", _semantic_without_text, ["events", "--ids-as-text"]),
]


def run_cli(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["llm4srs", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


@pytest.fixture
def world(tmp_path: Path) -> World:
    return _write_world(tmp_path / "world")


@pytest.fixture
def no_flows_no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list:
    """Fail the test if a flow starts (the check must come first) or a socket connects."""
    import flows.embeddings
    import flows.srs

    def flow_started(*args, **kwargs):
        raise AssertionError("a Prefect flow started: the bad input was not caught before it")

    monkeypatch.setattr(flows.embeddings, "embeddings_flow", flow_started)
    monkeypatch.setattr(flows.srs, "srs_flow", flow_started)
    attempts: list = []

    def connect(self, address, *a, **k):
        attempts.append(address)
        raise OSError(errno.ENETUNREACH, "network use in a bad-input test")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # an empty hub cache
    monkeypatch.setenv("LLM4SRS_CACHE_DIR", str(tmp_path / "llm-cache"))
    return attempts


def _assert_untouched(w: World, before_store: dict, before_data: dict) -> None:
    assert _snapshot(w.store) == before_store  # every version and CURRENT byte-identical
    assert not [p for p in w.store.rglob(".tmp-*")]
    prepared = w.data / "prepared"
    leftovers = [p.name for p in prepared.iterdir() if p.name.startswith(".")]
    assert leftovers == []  # no temp folder of a half-written dataset
    for folder in prepared.iterdir():  # a dataset that exists is complete
        assert (folder / "meta.json").is_file() and (folder / "items.parquet").is_file()
    after = _snapshot(w.data)
    assert all(after.get(k) == v for k, v in before_data.items())  # nothing rewritten


@pytest.mark.parametrize(("make_args", "needles"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_bad_input_is_one_line_and_writes_nothing(make_args, needles, world, no_flows_no_network,
                                                   monkeypatch, capsys):
    args = make_args(world)
    before_store, before_data = _snapshot(world.store), _snapshot(world.data)
    code, out, err = run_cli(args, monkeypatch, capsys)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert out == ""
    assert no_flows_no_network == []  # nothing tried the network (an unknown model id above all)
    _assert_untouched(world, before_store, before_data)


@pytest.mark.parametrize("where", ["parts", "manifest"])
def test_disk_full_while_writing_the_store(where, world, no_flows_no_network, monkeypatch, capsys):
    """ENOSPC halfway through a new version: one line, the previous version is still CURRENT
    and intact, the temp folder is gone."""
    import pyarrow.parquet as pq

    from embeddings_store import EmbeddingStore, layout

    raw = _raw_ids(world)
    file = _vectors_file(world.root / "v.parquet", raw, [[0.6, 0.8]] * len(raw))
    assert run_cli(_import(world, file), monkeypatch, capsys)[0] == 0  # version 1 of items/mine
    store = EmbeddingStore(world.store)
    first = store.resolve("events/items/mine")
    before = _snapshot(world.store)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    if where == "parts":
        monkeypatch.setattr(pq.ParquetWriter, "write_table", full)
    else:
        monkeypatch.setattr(layout, "atomic_write_text", full)
    file2 = _vectors_file(world.root / "v2.parquet", raw, [[0.8, 0.6]] * len(raw))
    code, out, err = run_cli(_import(world, file2), monkeypatch, capsys)
    monkeypatch.undo()
    assert code != 0 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: events/items/mine: writing version")
    assert "No space left on device" in lines[0] and "CURRENT is unchanged" in lines[0]
    assert _snapshot(world.store) == before
    assert not [p for p in world.store.rglob(".tmp-*")]
    assert store.resolve("events/items/mine") == first
    assert store.verify(first).ok
    _, vectors = store.read(first)
    assert np.allclose(vectors, [0.6, 0.8])


def test_disk_full_while_preparing_a_dataset(world, no_flows_no_network, monkeypatch, capsys):
    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "interactions.parquet")

    other = world.root / "other.csv"
    pl.read_csv(world.events).write_csv(other)
    monkeypatch.setattr(pl.DataFrame, "write_parquet", full)
    code, out, err = run_cli(["prepare", "--dataset", f"table:{other}", "--data-dir",
                              str(world.data)], monkeypatch, capsys)
    assert code != 0 and out == ""
    assert err.strip() == "error: interactions.parquet: No space left on device"
    left = [p.name for p in (world.data / "prepared").iterdir()]
    assert len(left) == 1 and left[0].startswith("events-")  # no `other` dataset, no temp folder


def test_store_import_writes_a_version_train_can_use(world, no_flows_no_network, monkeypatch,
                                                     capsys):
    """The good path of the import rows: raw ids in any order → items 1..N in id order."""
    from embeddings_store import EmbeddingStore
    from pipeline.data.dataset import Dataset
    from pipeline.methods.llm_init.table import read_item_vectors

    raw = _raw_ids(world)[::-1]
    vectors = [[float(i), 1.0] for i in range(len(raw))]
    code, out, err = run_cli(_import(world, _vectors_file(world.root / "v.parquet", raw, vectors)),
                             monkeypatch, capsys)
    assert code == 0 and err == "" and out.startswith("wrote events/items/mine@")
    ds = Dataset.load(next((world.data / "prepared").iterdir()))
    store = EmbeddingStore(world.store)
    got = read_item_vectors(ds, store, "events/items/mine")
    by_raw = dict(zip(raw, vectors, strict=True))
    expected = [by_raw[r] for r in ds.items.sort("item_id")["raw_id"].to_list()]
    assert np.array_equal(got, np.asarray(expected, dtype=np.float32))
    manifest = store.manifest(store.resolve("events/items/mine"))
    assert manifest.producer.generator == "import" and manifest.dataset.fingerprint == ds.fingerprint


def test_ids_as_text_reaches_the_semantic_prompt(world, monkeypatch, capsys):
    """Without text, `embed semantic --ids-as-text` goes on, with ids_as_text in its prompt."""
    import flows.embeddings

    seen: dict = {}

    def fake_flow(**kwargs):
        seen.update(kwargs)
        return {"items/semantic-minilm": "events/items/semantic-minilm@v1"}

    monkeypatch.setattr(flows.embeddings, "embeddings_flow", fake_flow)
    code, out, err = run_cli(_embed(world, "semantic", "minilm", "--ids-as-text"), monkeypatch,
                             capsys)
    assert code == 0, err
    assert seen["configs"]["semantic"]["prompt"]["ids_as_text"] is True
    assert out.strip() == "items/semantic-minilm: events/items/semantic-minilm@v1"


@pytest.mark.parametrize("endian", ["<", ">"])
def test_gguf_header_reader_skips_to_the_architecture(endian, tmp_path):
    """The header reader walks scalar, string and array values (either byte order) to
    general.architecture without parsing tensors."""
    import struct

    from pipeline.llm.gguf_header import read_architecture

    def s(text: str) -> bytes:
        return struct.pack(endian + "Q", len(text)) + text.encode()

    kv = [(s("tokenizer.tokens") + struct.pack(endian + "IIQ", 9, 8, 2) + s("a") + s("bc")),
          (s("x.count") + struct.pack(endian + "IQ", 10, 7)),
          (s("x.floats") + struct.pack(endian + "IIQ", 9, 6, 3) + struct.pack(endian + "3f", 1, 2, 3)),
          (s("general.architecture") + struct.pack(endian + "I", 8) + s("qwen3"))]
    path = tmp_path / "m.gguf"
    path.write_bytes(b"GGUF" + struct.pack(endian + "IQQ", 3, 0, len(kv)) + b"".join(kv))
    assert read_architecture(path) == "qwen3"
    path.write_bytes(path.read_bytes()[:-3])  # cut inside the architecture's string
    from pipeline.llm import ModelLoadError

    with pytest.raises(ModelLoadError, match="truncated or corrupt"):
        read_architecture(path)
