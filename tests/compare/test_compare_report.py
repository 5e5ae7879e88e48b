"""Aggregation, markdown and plots of the comparison on a hand-made results table."""

from __future__ import annotations

import pytest

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _row(method, backbone, seed, group, value, protocol="full", metric="ndcg@10", emb=None):
    return {"dataset": "toy", "fingerprint": "f", "method": method, "backbone": backbone,
            "embedding": emb, "seed": seed, "split": "test", "protocol": protocol,
            "group": group, "metric": metric, "value": value, "n_users": 10}


@pytest.fixture
def rows():
    sem = "toy/items/semantic-x@v0001"
    out = []
    for seed, (ov, ti, tu) in enumerate([(0.1, 0.05, 0.2), (0.3, 0.15, 0.4)]):
        out += [_row("id", "sasrec", seed, "overall", ov), _row("id", "sasrec", seed, "tail_item", ti),
                _row("id", "sasrec", seed, "tail_user", tu),
                _row("id", "sasrec", seed, "head_item", 0.9),  # not a compared group
                _row("id", "sasrec", seed, "overall", 0.7, metric="hr@10"),  # other metric
                _row("id", "sasrec", seed, "overall", ov + 0.4, protocol="s100")]
        out += [_row("llm-init", "sasrec", seed, g, 0.25, emb=sem)
                for g in ("overall", "tail_item", "tail_user")]
        out += [_row("id", "gru4rec", seed, "overall", 0.05 * (seed + 1))]
    return out


def test_aggregate_means_and_population_std(rows):
    import polars as pl

    from pipeline.compare_report import aggregate

    agg = aggregate(rows)
    assert set(agg["group"]) == {"overall", "tail_item", "tail_user"}

    def cell(backbone, method, protocol, group):
        r = agg.filter(pl.col("backbone") == backbone, pl.col("method") == method,
                       pl.col("protocol") == protocol, pl.col("group") == group)
        assert r.height == 1
        return r.row(0, named=True)

    c = cell("sasrec", "id", "full", "overall")
    assert c["mean"] == pytest.approx(0.2) and c["std"] == pytest.approx(0.1) and c["seeds"] == 2
    c = cell("sasrec", "id", "full", "tail_item")
    assert c["mean"] == pytest.approx(0.1) and c["std"] == pytest.approx(0.05)
    assert cell("sasrec", "id", "s100", "overall")["mean"] == pytest.approx(0.6)
    c = cell("sasrec", "llm-init", "full", "tail_user")
    assert c["kind"] == "semantic-x" and c["label"] == "llm-init [semantic-x]" and c["std"] == 0.0
    assert cell("gru4rec", "id", "full", "overall")["mean"] == pytest.approx(0.075)
    # order of first appearance: sasrec before gru4rec, id before llm-init
    assert agg["backbone"].unique(maintain_order=True).to_list() == ["sasrec", "gru4rec"]


def test_markdown_table_marks_the_best_and_shows_s100_beside(rows):
    from pipeline.compare_report import aggregate, markdown

    md = markdown(aggregate(rows), "toy", notes=["a note"])
    lines = md.splitlines()
    header = next(line for line in lines if line.startswith("| backbone"))
    assert "full overall" in header and "s100 overall" in header and "full tail item" in header
    id_row = next(line for line in lines if line.startswith("| sasrec | id |"))
    llm_row = next(line for line in lines if line.startswith("| sasrec | llm-init |"))
    assert "0.2000 ± 0.1000" in id_row and "**0.6000 ± 0.0000**" not in id_row
    assert "**0.2500 ± 0.0000**" in llm_row  # best full overall of sasrec: 0.25 > 0.20
    assert "**0.6000 ± 0.1000**" in id_row  # only id has s100 rows
    assert "| semantic-x |" in llm_row and "| — |" in llm_row  # no s100 for llm-init
    assert "- a note" in md


def test_compare_plot_is_a_png(rows, tmp_path):
    from pipeline.compare_report import aggregate
    from pipeline.plots import compare_plot

    out = compare_plot(aggregate(rows), tmp_path / "sub" / "cmp.png")
    data = out.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 5_000
    assert [p.name for p in out.parent.iterdir()] == ["cmp.png"]  # no temp file left


def test_head_tail_plot_is_a_png_and_leaves_pyplot_alone(rows, tmp_path):
    import matplotlib

    from pipeline.plots import head_tail_plot

    out = head_tail_plot(rows, tmp_path / "ht.png")
    assert out.read_bytes()[:8] == PNG_MAGIC
    import sys

    if "matplotlib.pyplot" in sys.modules:  # imported by someone else: no figure of ours there
        import matplotlib.pyplot as plt

        assert plt.get_fignums() == []
    assert matplotlib.get_backend()  # the process' backend choice is untouched


def test_e4srec_hook_reads_the_newest_table_of_this_fingerprint(tmp_path, rows):
    from pipeline.compare_report import find_e4srec_rows
    from pipeline.results import write_table

    assert find_e4srec_rows(tmp_path, "toy", "f") == ([], None)
    e4 = [{**r, "method": "e4srec", "backbone": "e4srec"} for r in rows[:3]]
    write_table(e4, tmp_path / "toy" / "results-e4srec-20260101T000000Z.parquet")
    write_table([{**r, "fingerprint": "other"} for r in e4],
                tmp_path / "toy" / "results-e4srec-20260102T000000Z.parquet")
    found, path = find_e4srec_rows(tmp_path, "toy", "other")
    assert path.name == "results-e4srec-20260102T000000Z.parquet" and len(found) == 3
    found, _ = find_e4srec_rows(tmp_path, "toy", "f")
    assert found == []  # the newest table is of another dataset version
