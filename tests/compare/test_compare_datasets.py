"""`llm4srs compare` over several datasets: per-dataset budgets, the configuration chosen on
validation, the leaderboard, and every dataset checked before anything trains."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from test_compare_cli import run_cli  # pytest puts tests/compare on sys.path (no __init__)

# The global budget of configs/compare.yaml: ML-100k's cells must keep exactly these (their
# config hashes, hence their cached runs, depend on it).
ML100K_OVERRIDES = {"model.max_len": 50, "epochs": 30, "patience": 5, "threads": 1}
ML100K_LLMESR = {**ML100K_OVERRIDES, "llmesr.n_neighbours": 5, "llmesr.rasd": "auto",
                 "llmesr.teacher": "validation", "lr_decay_patience": 0}


def config_rows(runs_dir: Path, dataset: str, backbone: str, method: str, emb: str | None,
                results: list[tuple[float, float, float]]) -> list[dict]:
    """Test rows of one configuration, one run per seed: results[seed] = (valid, test
    overall, test tail_item) full NDCG@10; each run's run.json holds its validation value."""
    kind = emb.split("@")[0].rsplit("/", 1)[-1] if emb else "id"
    rows = []
    for seed, (valid, overall, tail) in enumerate(results):
        run = f"{dataset}/{backbone}-{method}-{kind}-s{seed}"
        card = runs_dir / run / "run.json"
        card.parent.mkdir(parents=True, exist_ok=True)
        card.write_text(json.dumps({"valid_rows": [
            {"protocol": "full", "group": "overall", "metric": "ndcg@10", "value": valid},
            {"protocol": "full", "group": "tail_item", "metric": "ndcg@10", "value": 0.9}]}))
        rows += [{"dataset": dataset, "fingerprint": "f", "method": method, "backbone": backbone,
                  "embedding": emb, "seed": seed, "split": "test", "protocol": "full",
                  "group": group, "metric": "ndcg@10", "value": value, "n_users": 10, "run": run}
                 for group, value in (("overall", overall), ("tail_item", tail))]
    return rows


def board_rows(runs_dir: Path, dataset: str) -> list[dict]:
    """sasrec: `id` is best on test (0.30) but `llm-init` on validation (0.20 > 0.10);
    gru4rec: only `id`. Runs without a run.json (E4SRec's) never count."""
    emb = f"{dataset}/items/semantic-x@v0001"
    return [*config_rows(runs_dir, dataset, "sasrec", "id", None, [(0.10, 0.30, 0.20), (0.12, 0.32, 0.22)]),
            *config_rows(runs_dir, dataset, "sasrec", "llm-init", emb, [(0.20, 0.10, 0.05), (0.22, 0.14, 0.07)]),
            *config_rows(runs_dir, dataset, "gru4rec", "id", None, [(0.05, 0.06, 0.01)]),
            {**config_rows(runs_dir, dataset, "e4srec", "e4srec", None, [(0.0, 0.5, 0.5)])[0],
             "run": None}]


def test_preset_for_dataset_merges_or_replaces(tmp_path):
    from pipeline.compare import ComparePreset, load_preset
    from pipeline.errors import InputError

    preset = ComparePreset(
        overrides={"epochs": 30, "threads": 1}, llmesr_overrides={"llmesr.n_neighbours": 5},
        init_overrides={"lr": 0.002},
        datasets={"merged": {"overrides": {"epochs": 5}, "llmesr_overrides": {"llmesr.rasd": "on"}},
                  "full": {"replace_overrides": True, "overrides": {"threads": 1},
                           "init_overrides": {"lr": 0.001}, "backbones": ["sasrec"]}})
    assert preset.for_dataset("other") is preset  # no entry: the global budget itself
    merged = preset.for_dataset("merged")
    assert merged.overrides == {"epochs": 5, "threads": 1}
    assert merged.llmesr_overrides == {"llmesr.n_neighbours": 5, "llmesr.rasd": "on"}
    assert merged.backbones == ["sasrec", "gru4rec", "bert4rec"]
    assert merged.init_overrides == {"lr": 0.002}
    full = preset.for_dataset("full")
    assert full.overrides == {"threads": 1} and full.llmesr_overrides == {}
    assert full.init_overrides == {"lr": 0.001}
    assert full.backbones == ["sasrec"] and preset.overrides == {"epochs": 30, "threads": 1}

    bad = tmp_path / "compare.yaml"
    bad.write_text("datasets:\n  x:\n    backbones: []\n")
    with pytest.raises(InputError, match="compare preset"):
        load_preset(bad)
    bad.write_text("datasets:\n  x:\n    budget: full\n")  # a typo'd key is refused
    with pytest.raises(InputError, match="budget"):
        load_preset(bad)


def test_backbone_overrides_apply_per_backbone_and_follow_replace(tmp_path):
    from pipeline.compare import ComparePreset, load_preset
    from pipeline.errors import InputError

    preset = ComparePreset(
        overrides={"epochs": 30, "patience": 5}, llmesr_overrides={"lr": 0.003},
        backbone_overrides={"bert4rec": {"patience": 30, "lr": 0.0005}},
        datasets={"merged": {"backbone_overrides": {"bert4rec": {"epochs": 9},
                                                    "gru4rec": {"lr": 0.01}}},
                  "full": {"replace_overrides": True}})
    # the backbone's section comes after the budget and before the method's own section
    assert preset.cell_overrides(None, "id", "bert4rec") == {"epochs": 30, "patience": 30,
                                                             "lr": 0.0005}
    assert preset.cell_overrides(None, "llmesr", "bert4rec")["lr"] == 0.003
    assert preset.cell_overrides({"patience": 2}, "id", "bert4rec")["patience"] == 2
    assert preset.cell_overrides(None, "id", "sasrec") == {"epochs": 30, "patience": 5}
    merged = preset.for_dataset("merged")
    assert merged.backbone_overrides == {"bert4rec": {"patience": 30, "lr": 0.0005, "epochs": 9},
                                         "gru4rec": {"lr": 0.01}}
    assert preset.for_dataset("full").backbone_overrides == {}

    bad = tmp_path / "compare.yaml"
    bad.write_text("backbone_overrides:\n  bert5rec: {patience: 3}\n")
    with pytest.raises(InputError, match="unknown backbone bert5rec"):
        load_preset(bad)


def test_repo_preset_keeps_ml100k_cells_and_gives_amazon_full_presets():
    from pipeline.compare import DEFAULT_ABLATIONS, load_preset, methods_for, plan_cells
    from pipeline.config import load_train_config

    preset = load_preset()
    assert preset.overrides == ML100K_OVERRIDES
    items = ["d/items/semantic-a@v0001", "d/items/llmemb-rat@v0001"]
    users = dict.fromkeys(items, "d/users/semantic-a@v0001")
    methods = methods_for(None, DEFAULT_ABLATIONS, llmesr=True)

    ml = preset.for_dataset("movielens-100k")
    cells, _ = plan_cells(ml.backbones, [0], items, users, methods, DEFAULT_ABLATIONS, ml)
    assert ml.backbones == ["sasrec", "gru4rec", "bert4rec"]
    plain = [c for c in cells if c.train_method == "srs"]
    assert len(plain) == 9  # 3 × (id + 2 kinds)
    # SASRec and GRU4Rec keep the budget (and their cached runs); BERT4Rec's own section
    # turns early stopping off within the 30-epoch cap, for every method
    assert all(c.overrides == ML100K_OVERRIDES for c in plain if c.backbone != "bert4rec")
    assert all(c.overrides == {**ML100K_OVERRIDES, "patience": 30}
               for c in plain if c.backbone == "bert4rec")
    assert {c.backbone for c in plain} == {"sasrec", "gru4rec", "bert4rec"}
    assert next(c for c in cells if c.backbone == "bert4rec" and c.method == "llmesr"
                ).overrides == {**ML100K_LLMESR, "patience": 30}
    llmesr = next(c for c in cells if c.method == "llmesr")
    assert llmesr.overrides == ML100K_LLMESR

    amazon = preset.for_dataset("amazon-scientific")
    cells, _ = plan_cells(amazon.backbones, [0], items, users, methods, DEFAULT_ABLATIONS, amazon)
    assert sorted({c.backbone for c in cells}) == ["gru4rec", "sasrec"]
    assert {tuple(c.overrides.items()) for c in cells if c.method == "id"} == {(("threads", 1),)}
    # LLM-init at its own learning rate (init_overrides), chosen on Amazon's validation
    assert {tuple(c.overrides.items()) for c in cells if c.method == "llm-init"} == {
        (("threads", 1), ("lr", 0.001))}
    assert next(c for c in cells if c.method == "llmesr").overrides == {
        "threads": 1, "llmesr.rasd": "auto", "llmesr.teacher": "validation"}
    # threads is outside the config hash: these are the full presets' own runs
    for backbone in amazon.backbones:
        full = load_train_config(backbone, {})
        assert load_train_config(backbone, {"threads": 1}).config_hash() == full.config_hash()
        assert full.epochs > ML100K_OVERRIDES["epochs"]


def test_best_configuration_is_chosen_on_validation_not_test(tmp_path):
    from pipeline.compare import validation_winner
    from pipeline.compare_report import best_on_validation

    rows = board_rows(tmp_path, "toy")
    best = best_on_validation(rows, tmp_path)
    assert [b["backbone"] for b in best] == ["sasrec", "gru4rec"]  # no run.json: no e4srec
    sasrec = best[0]
    assert (sasrec["method"], sasrec["kind"], sasrec["seeds"]) == ("llm-init", "semantic-x", 2)
    assert sasrec["valid"] == pytest.approx(0.21)
    assert sasrec["overall"] == pytest.approx(0.12) and sasrec["tail_item"] == pytest.approx(0.06)
    assert best[1] == {"backbone": "gru4rec", "method": "id", "kind": None,
                       "valid": pytest.approx(0.05), "seeds": 1, "overall": pytest.approx(0.06),
                       "tail_item": pytest.approx(0.01)}
    # the promotion helper reads validation the same way
    ref, value, evidence = validation_winner(rows, tmp_path)
    assert ref == "toy/items/semantic-x@v0001" and value == pytest.approx(0.21)
    assert evidence["runs"][ref] == ["toy/sasrec-llm-init-semantic-x-s0",
                                     "toy/sasrec-llm-init-semantic-x-s1"]


def test_leaderboard_has_a_section_per_dataset(tmp_path):
    from pipeline.compare_report import aggregate, leaderboard, markdown, write_leaderboard

    sections = []
    for name in ("movielens-100k", "amazon-scientific"):
        rows = board_rows(tmp_path, name)
        sections.append((name, rows, markdown(aggregate(rows), f"Comparison on {name}")))
    text = leaderboard(sections, tmp_path, notes=["skipped x: no data at /nowhere"])
    lines = text.splitlines()
    assert lines[0] == "# Leaderboard: movielens-100k, amazon-scientific"
    for name in ("movielens-100k", "amazon-scientific"):
        head = lines.index(f"## Comparison on {name}")
        chosen = lines.index(f"### Chosen on validation: {name}")
        assert head < chosen and lines[chosen + 2:chosen + 4] == [
            "- sasrec: **llm-init [semantic-x]**, valid 0.2100 (2 seeds); test overall 0.1200, "
            "tail item 0.0600",
            "- gru4rec: **id**, valid 0.0500 (1 seed); test overall 0.0600, tail item 0.0100"]
    assert lines.index("## Comparison on movielens-100k") < lines.index("## Comparison on amazon-scientific")
    assert "| sasrec | id | — | 2 | **0.3100 ± 0.0100**" in text  # the test table is unchanged
    assert lines[-1] == "- skipped x: no data at /nowhere"
    path = write_leaderboard(tmp_path, text)
    assert path.parent == tmp_path and path.name.startswith("leaderboard-") and path.suffix == ".md"
    assert path.read_text() == text
    sys.stdout.write(text)  # the format, for `pytest -s`


def test_second_dataset_is_checked_before_anything_runs(store_with_items, tmp_path,
                                                        monkeypatch, capsys):
    import llm4srs.compare_cli

    def no_flow(*a, **k):
        raise AssertionError("a flow started before every dataset was checked")

    monkeypatch.setattr(llm4srs.compare_cli, "run_flow", no_flow)
    bare = tmp_path / "bare.yaml"  # a dataset with no item embeddings in the store
    bare.write_text("source: synthetic\nname: bare\n")
    for second, needle in [
        ("nope", "dataset 'nope'"),
        (str(bare), f"no item embeddings (items/…) in the store for {bare}"),
        (f"lcrec:{tmp_path / 'absent'}", f"lcrec:{tmp_path / 'absent'}: no data at"),
    ]:
        code, out, err = run_cli(["--dataset", f"synthetic,{second}", "--store", str(store_with_items),
                                  "--data-dir", str(tmp_path / "d")], monkeypatch, capsys)
        assert code == 2 and out == "" and err.startswith("error: ") and needle in err, err
        assert len(err.strip().splitlines()) == 1
    # --kinds wrong for the second dataset: the error names it
    other = tmp_path / "other.yaml"
    other.write_text("source: synthetic\nname: other\n")
    code, _, err = run_cli(["--dataset", f"synthetic,{other}", "--kinds", "semantic-a", "--store",
                            str(store_with_items)], monkeypatch, capsys)
    assert code == 2 and err.startswith(f"error: {other}: --kinds: items/semantic-a is not in the store")


def test_optional_dataset_without_item_embeddings_is_skipped_with_how_to_build(
        store_with_items, tmp_path):
    from pipeline.compare import check_datasets, load_preset
    from pipeline.errors import InputError

    bare = tmp_path / "bare.yaml"
    bare.write_text("source: synthetic\nname: bare\n")
    common = dict(backbones=None, kinds=None, methods=["id", "llm-init"], overrides={},
                  preset=load_preset(), store_root=store_with_items, data_dir=tmp_path / "d",
                  optional={"bare"})  # by name or by spec
    checked, skipped = check_datasets(["synthetic", str(bare)], **common)
    assert [(c.name, c.kinds) for c in checked] == [("synthetic", ["items/semantic-a"])]
    assert skipped == [f"skipped {bare}: the store holds no item embeddings for it; build them "
                       f"with `llm4srs embed llmemb --dataset {bare}`"]
    with pytest.raises(InputError, match=f"nothing to compare: skipped {bare}"):
        check_datasets([str(bare)], **common)
    # only `id` needs no item embeddings: nothing to skip
    checked, skipped = check_datasets([str(bare)], **{**common, "methods": ["id"]})
    assert [(c.name, c.kinds) for c in checked] == [("bare", None)] and skipped == []


def test_several_datasets_one_leaderboard(store_with_items, tmp_path, monkeypatch, capsys):
    """The CLI end to end with the training faked: the parent flow's body runs (without
    Prefect), compare_flow is replaced by one that writes a table as it would."""
    import flows.compare
    import llm4srs.compare_cli
    from pipeline.compare_report import aggregate, markdown
    from pipeline.data.config import resolve_dataset
    from pipeline.results import write_table

    calls: list[dict] = []

    def fake_compare_flow(**kw):
        calls.append(kw)
        name = resolve_dataset(kw["dataset"]).dataset_name
        rows = board_rows(Path(kw["runs_dir"]), name)
        table = write_table(rows, Path(kw["runs_dir"]) / name / "compare-x.parquet")
        return {"dataset": name, "table": str(table), "plot": str(table.with_suffix(".png")),
                "html": str(table.with_suffix(".html")), "failed": [],
                "markdown": markdown(aggregate(rows), f"Comparison on {name}")}

    monkeypatch.setattr(flows.compare, "compare_flow", fake_compare_flow)
    monkeypatch.setattr(flows.compare, "create_markdown_artifact", lambda *a, **k: None)
    monkeypatch.setattr(llm4srs.compare_cli, "run_flow", lambda flow, **kw: flow.fn(**kw))
    other = tmp_path / "other.yaml"
    other.write_text("source: synthetic\nname: other\n")
    absent = f"lcrec:{tmp_path / 'absent'}"
    runs = tmp_path / "runs"
    args = ["--dataset", f"synthetic,{other},{absent}", "--optional", absent, "--store",
            str(store_with_items), "--runs-dir", str(runs), "--seeds", "0", "--methods", "id,llm-init"]
    code, out, err = run_cli(args, monkeypatch, capsys)
    assert code == 0, err
    assert err.strip() == f"skipped {absent}: no data at {tmp_path / 'absent'}"
    assert [(c["dataset"], c["backbones"], c["kinds"]) for c in calls] == [
        ("synthetic", ["sasrec", "gru4rec", "bert4rec"], ["items/semantic-a"]),
        (str(other), ["sasrec", "gru4rec", "bert4rec"], ["items/semantic-b"])]
    board = next(runs.glob("leaderboard-*.md"))
    lines = out.strip().splitlines()
    assert lines[0] == "# Leaderboard: synthetic, other"
    assert lines[-1] == f"leaderboard: {board}"
    assert [line for line in lines if line.startswith("plot: ")] == [
        f"plot: {runs / 'synthetic' / 'compare-x.png'}", f"plot: {runs / 'other' / 'compare-x.png'}"]
    assert "## Comparison on other" in board.read_text()
    assert f"- skipped {absent}: no data at {tmp_path / 'absent'}" in board.read_text()

    calls.clear()
    code, out, err = run_cli([*args, "--json"], monkeypatch, capsys)
    assert code == 0, err
    rows = json.loads(out.splitlines()[0])
    assert {r["dataset"] for r in rows} == {"synthetic", "other"}
    chosen = [r for r in rows if r["dataset"] == "other" and r["backbone"] == "sasrec"
              and r["method"] == "llm-init" and r["group"] == "overall"]
    assert len(chosen) == 1 and chosen[0]["mean"] == pytest.approx(0.12)
