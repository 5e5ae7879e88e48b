"""A downstream job: read a stored item table and recommend from a trained run.

    .venv/bin/python examples/downstream.py --store store --data-dir data \
        --kind movielens-100k/items/llmemb-rat --run runs/movielens-100k/<run> --history 50,172,181

Uses llm4srs.api only (no Prefect, no knowledge of the store's files). tests/core/test_api.py
runs this file on tiny artefacts.
"""

from __future__ import annotations

import argparse

from llm4srs import api


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--store", default="store")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--kind", required=True, help="dataset/items/name[@version|@tag]")
    p.add_argument("--run", required=True, help="a run folder")
    p.add_argument("--history", required=True, help="comma list of raw item ids")
    args = p.parse_args()
    history = args.history.split(",")

    # 1. A stored item table as numpy / torch / nn.Embedding, raw ids <-> rows, neighbours.
    table = api.item_table(args.store, args.kind, data_dir=args.data_dir)
    print(f"{table.ref}: {table.vectors.shape[0]} items x {table.vectors.shape[1]} dims")
    emb = table.embedding()  # row 0 = padding, row i = item i
    rows = table.rows(history)
    print("embedding rows of the history:", emb.weight[rows + 1].shape)
    print("nearest to", history[0], ":", [raw for raw, _ in table.neighbours(history[0], k=5)])

    # 2. A trained run: top-k for a history of raw ids (a user it never saw is fine).
    run = api.load_run(args.run)
    for rec in run.recommend(history, k=10):
        print(f"{rec['rank']:>3} {rec['item']:<10} {rec['score']:8.4f} {rec['title']}")


if __name__ == "__main__":
    main()
