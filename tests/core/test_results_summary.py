"""The results table's summary: seeds pooled, runs on different user kinds kept apart."""

from __future__ import annotations

from pipeline.results import summarize


def _row(seed: int, value: float, users: str | None) -> dict:
    return {"dataset": "d", "method": "llmesr", "backbone": "sasrec", "embedding": "d/items/a@v1",
            "user_embedding": users, "seed": seed, "split": "test", "protocol": "full",
            "group": "overall", "metric": "ndcg@10", "value": value}


def test_summary_pools_seeds_but_not_user_kinds():
    rows = [_row(0, 0.1, "d/users/a@v1"), _row(1, 0.3, "d/users/a@v1"), _row(0, 0.5, "d/users/b@v1")]
    table = summarize(rows, metrics=("ndcg@10",))
    by = dict(zip(table["user_embedding"], zip(table["seeds"], table["ndcg@10"], strict=True),
                  strict=True))
    assert by == {"d/users/a@v1": (2, "0.2 ± 0.1"), "d/users/b@v1": (1, "0.5 ± 0.0")}
