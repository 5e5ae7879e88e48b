"""Aggregation and markdown of the comparison table: mean ± std over seeds of one metric
for overall / tail-item / tail-user users, per (backbone, method, item embedding); and the
leaderboard of several datasets' comparisons, each backbone's configuration chosen on
validation."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from embeddings_store.atomic import atomic_write_text
from pipeline.compare import short_kind, validation_means
from pipeline.results import PROTOCOL_NOTE, to_frame
from pipeline.runs import utc_stamp

GROUPS = ("overall", "tail_item", "tail_user")


def protocols(agg: pl.DataFrame) -> list[str]:
    """`full` first, then the sampled protocols present (`s100` unless n_negatives was set)."""
    found = list(dict.fromkeys(agg["protocol"].to_list()))
    return sorted(found, key=lambda p: (p != "full", p))
KEYS = ["backbone", "method", "kind"]
METHOD_ORDER = ("pop", "id", "llm-init", "llm-frozen_adapter", "llmesr", "llmesr-nodistill",
                "llmesr-nocross")
# Rows of another flow merged into the table (E4SRec: its own LLM is the recommender; its
# flow writes runs/<dataset>/results-e4srec-<UTC stamp>.parquet).
E4SREC_GLOB = "results-e4srec-*.parquet"


def label(method: str, kind: str | None) -> str:
    """The legend entry of a (method, item embedding) pair."""
    return method if kind is None else f"{method} [{kind}]"


def aggregate(rows: list[dict] | pl.DataFrame, metric: str = "ndcg@10",
              groups: tuple[str, ...] = GROUPS) -> pl.DataFrame:
    """One row per (backbone, method, kind, protocol, group): mean, std (population, as
    in pipeline.results.summarize; 0 for one seed) and the number of seeds.

    Order: backbones and item kinds as they first appear in `rows`; methods id, llm-init,
    llmesr, its ablations, then any other (e.g. e4srec) as they appear.
    """
    frame = rows if isinstance(rows, pl.DataFrame) else to_frame(rows)
    frame = frame.filter(pl.col("metric") == metric, pl.col("group").is_in(list(groups)))
    frame = frame.with_columns(
        kind=pl.col("embedding").map_elements(short_kind, return_dtype=pl.String))
    agg = frame.group_by([*KEYS, "protocol", "group"], maintain_order=True).agg(
        mean=pl.col("value").mean(), std=pl.col("value").std(ddof=0), seeds=pl.col("seed").n_unique())
    agg = agg.with_columns(pl.col("std").fill_null(0.0),
                           label=pl.struct("method", "kind").map_elements(
                               lambda s: label(s["method"], s["kind"]), return_dtype=pl.String))
    # Display order: backbones and kinds as first seen, methods in METHOD_ORDER then as seen.
    seen = {c: list(dict.fromkeys(agg[c].to_list())) for c in ("backbone", "method", "kind")}
    methods = [m for m in METHOD_ORDER if m in seen["method"]] + [
        m for m in seen["method"] if m not in METHOD_ORDER]
    rank = {"backbone": seen["backbone"], "method": methods, "kind": seen["kind"]}
    keys = [pl.col(c).map_elements(lambda v, order=order: order.index(v), return_dtype=pl.Int64,
                                   skip_nulls=False) for c, order in rank.items()]
    return agg.sort(keys, maintain_order=True)


def wide(agg: pl.DataFrame) -> pl.DataFrame:
    """backbone, method, kind, seeds, then `<protocol> <group>` mean and std columns."""
    cols = [(p, g) for p in protocols(agg) for g in GROUPS]
    base = agg.select([*KEYS, "seeds"]).unique(subset=KEYS, maintain_order=True)
    for p, g in cols:
        part = agg.filter(pl.col("protocol") == p, pl.col("group") == g).select(
            *KEYS, pl.col("mean").alias(f"{p} {g}"), pl.col("std").alias(f"{p} {g} std"))
        base = base.join(part, on=KEYS, how="left", nulls_equal=True, maintain_order="left")
    return base


def markdown(agg: pl.DataFrame, title: str, metric: str = "ndcg@10",
             notes: list[str] | None = None) -> str:
    """The comparison as a markdown table; the best mean per backbone and column in bold."""
    table = wide(agg)
    cols = [f"{p} {g}" for p in protocols(agg) for g in GROUPS if f"{p} {g}" in table.columns]
    best = table.group_by("backbone").agg([pl.col(c).max() for c in cols])
    best_of = {r["backbone"]: r for r in best.iter_rows(named=True)}
    head = ["backbone", "method", "item embedding", "seeds",
            *[c.replace("_", " ") for c in cols]]
    lines = [f"## {title}", "", f"Test {metric}, mean ± std over seeds.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table.iter_rows(named=True):
        cells = [r["backbone"], r["method"], r["kind"] or "—", str(r["seeds"])]
        for c in cols:
            if r[c] is None:
                cells.append("—")
                continue
            text = f"{r[c]:.4f} ± {r[c + ' std']:.4f}"
            cells.append(f"**{text}**" if r[c] == best_of[r["backbone"]][c] else text)
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"{PROTOCOL_NOTE} Tail items: the 80% least popular by training popularity; "
              "tail users: the 80% with the shortest training histories. Model selected on "
              "validation full NDCG@10."]
    lines += [f"- {n}" for n in notes or []]
    return "\n".join(lines)


def find_e4srec_rows(runs_dir: Path, dataset: str, fingerprint: str) -> tuple[list[dict], Path | None]:
    """Hook for E4SRec: the newest `runs/<dataset>/results-e4srec-*.parquet` (a results table as
    pipeline.results.write_table writes it), test rows of this dataset's fingerprint only.
    ([], None) when there is none."""
    tables = sorted((runs_dir / dataset).glob(E4SREC_GLOB))
    if not tables:
        return [], None
    frame = pl.read_parquet(tables[-1])
    if "fingerprint" in frame.columns:
        frame = frame.filter(pl.col("fingerprint") == fingerprint)
    if "split" in frame.columns:
        frame = frame.filter(pl.col("split").is_null() | (pl.col("split") == "test"))
    return frame.to_dicts(), tables[-1]


def best_on_validation(rows: list[dict], runs_dir: str | Path) -> list[dict]:
    """Per backbone (in table order), the configuration (method, item embedding) whose runs
    have the best mean validation full NDCG@10 over seeds (`validation_means`: run.json, not
    the test rows), with its test full NDCG@10 means: dicts of backbone, method, kind,
    valid, seeds (runs averaged), overall and tail_item (None where the table has none)."""
    means, runs = validation_means(
        rows, runs_dir, lambda r: (r["backbone"], r["method"], r.get("embedding")))
    test = aggregate(rows).filter(pl.col("protocol") == "full")
    out = []
    for backbone in dict.fromkeys(k[0] for k in means):
        key = max((k for k in means if k[0] == backbone), key=means.__getitem__)
        kind = short_kind(key[2])
        found = test.filter(pl.col("backbone") == backbone, pl.col("method") == key[1],
                            pl.col("kind").eq_missing(kind))
        by_group = dict(zip(found["group"], found["mean"], strict=True))
        out.append({"backbone": backbone, "method": key[1], "kind": kind, "valid": means[key],
                    "seeds": len(runs[key]), "overall": by_group.get("overall"),
                    "tail_item": by_group.get("tail_item")})
    return out


def leaderboard(sections: list[tuple[str, list[dict], str]], runs_dir: str | Path,
                notes: list[str] | None = None) -> str:
    """One markdown page over several datasets. `sections`: (dataset, its comparison's
    result rows, its `markdown` table as the flow wrote it, notes included); under each
    table, per backbone, the configuration chosen on validation (`best_on_validation`)."""
    def num(value: float | None) -> str:
        return "—" if value is None else f"{value:.4f}"

    lines = [f"# Leaderboard: {', '.join(s[0] for s in sections)}", "",
             "Per dataset: the comparison on test, then per backbone the configuration with "
             "the best mean validation full NDCG@10 over seeds (test never chooses), with its "
             "test full NDCG@10 (mean over the same seeds)."]
    for dataset, rows, table in sections:
        best = best_on_validation(rows, runs_dir)
        lines += ["", table, "", f"### Chosen on validation: {dataset}", ""]
        lines += [f"- {b['backbone']}: **{label(b['method'], b['kind'])}**, valid "
                  f"{b['valid']:.4f} ({b['seeds']} seed{'s' * (b['seeds'] != 1)}); test "
                  f"overall {num(b['overall'])}, tail item {num(b['tail_item'])}"
                  for b in best] or [
            "- none: no row names a run with a run.json"]
    if notes:
        lines += ["", *[f"- {n}" for n in notes]]
    return "\n".join(lines) + "\n"


def write_leaderboard(runs_dir: str | Path, text: str) -> Path:
    """`runs/leaderboard-<UTC time>.md`, written aside then renamed."""
    path = Path(runs_dir) / f"leaderboard-{utc_stamp()}.md"
    atomic_write_text(path, text)
    return path
