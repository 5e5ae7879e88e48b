"""Result rows: one per (run, protocol, group, metric), the results table of DESIGN.md."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from embeddings_store.atomic import atomic_path

# user_embedding: the users/… version LLM-ESR's self-distillation retrieved neighbours from.
# ci95: half-width of the 95% interval of `value` over the n_users users (1.96·s/√n).
COLUMNS = ["dataset", "fingerprint", "method", "backbone", "embedding", "user_embedding", "seed",
           "split", "protocol", "group", "metric", "value", "n_users", "ci95", "train_seconds", "best_epoch",
           "config_hash", "run"]  # run: dataset/run-folder, what `llm4srs recommend` takes
SUMMARY_METRICS = ("ndcg@10", "hr@10", "ndcg@20", "hr@20", "mrr@10")


def to_frame(rows: list[dict]) -> pl.DataFrame:
    frame = pl.DataFrame(rows, infer_schema_length=None)
    for col in COLUMNS:
        if col not in frame.columns:
            frame = frame.with_columns(pl.lit(None).alias(col))
    return frame.select(COLUMNS)


def write_table(rows: list[dict], path: Path) -> Path:
    """Write rows as Parquet, aside then renamed."""
    with atomic_path(path) as tmp:
        to_frame(rows).write_parquet(tmp)
    return path


def summarize(rows: list[dict], metrics: tuple[str, ...] = SUMMARY_METRICS) -> pl.DataFrame:
    """Mean ± std over seeds, one line per (method, backbone, embedding, user_embedding,
    protocol, group): LLM-ESR runs distilling from different users/… kinds stay apart."""
    keys = ["method", "backbone", "embedding", "user_embedding", "protocol", "group"]
    frame = to_frame(rows).filter(pl.col("metric").is_in(list(metrics)))
    agg = frame.group_by([*keys, "metric"], maintain_order=True).agg(
        mean=pl.col("value").mean(), std=pl.col("value").std(ddof=0), seeds=pl.len()
    )
    agg = agg.with_columns(
        cell=pl.format("{} ± {}", pl.col("mean").round(4), pl.col("std").round(4))
    )
    wide = agg.pivot(on="metric", index=[*keys, "seeds"], values="cell")
    return wide.select([*keys, "seeds", *[m for m in metrics if m in wide.columns]])


# The ranking protocols, as every report states them.
PROTOCOL_NOTE = ("`full`: ranked against every item, the user's history masked; `s<n>` (`s100` "
             "unless `--set n_negatives=…`): against n fixed sampled negatives outside the "
             "user's history. Ties broken pessimistically.")


def markdown(rows: list[dict], title: str) -> str:
    """A markdown table of summarize(rows) with the protocol stated under it."""
    table = summarize(rows)
    header = "| " + " | ".join(table.columns) + " |"
    sep = "|" + "---|" * len(table.columns)
    lines = [f"## {title}", "", header, sep]
    for rec in table.iter_rows():
        lines.append("| " + " | ".join("" if v is None else str(v) for v in rec) + " |")
    lines += ["", f"{PROTOCOL_NOTE} Mean ± std over seeds; test split; model selected on "
              "validation full NDCG@10."]
    return "\n".join(lines)
