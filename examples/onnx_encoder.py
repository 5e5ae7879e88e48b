"""A downstream job scoring with a run's exported ONNX encoder: onnxruntime and numpy, no
PyTorch.

    .venv/bin/llm4srs export movielens-100k/<run>      # encoder.onnx + items/run-<run>
    .venv/bin/python examples/onnx_encoder.py --onnx runs/movielens-100k/<run>/encoder.onnx \
        --store store --data-dir data --history 50,172,181

The encoder maps left-padded internal item ids [B, max_len] (0 = padding, most recent last)
to user vectors [B, D]; an item's score is the inner product with its row of the run's item
table, which `llm4srs export` stored as `items/run-<run folder>`. The file's metadata names
the run and its dataset's fingerprint, so this finds both itself. tests/core/test_api.py runs
this file and checks it ranks as `llm4srs recommend` does.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

from embeddings_store import EmbeddingStore
from pipeline.data.dataset import Dataset, read_meta
from pipeline.store_io import read_catalogue


def find_dataset(fingerprint: str, data_dir: Path) -> Dataset:
    for folder in sorted((data_dir / "prepared").glob("*/")):
        if (folder / "meta.json").is_file() and read_meta(folder)["fingerprint"] == fingerprint:
            return Dataset.load(folder)
    sys.exit(f"error: no prepared dataset with fingerprint {fingerprint} under {data_dir}/prepared")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--onnx", required=True, help="runs/<dataset>/<run>/encoder.onnx")
    p.add_argument("--store", default="store")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--history", required=True, help="comma list of raw item ids, oldest first")
    p.add_argument("-k", type=int, default=10)
    args = p.parse_args()

    session = ort.InferenceSession(args.onnx, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map  # llm4srs.run, .fingerprint, …
    window = session.get_inputs()[0].shape[1]  # the run's max_len; the batch axis is free
    dataset = find_dataset(meta["llm4srs.fingerprint"], Path(args.data_dir))
    run_folder = meta["llm4srs.run"].split("/", 1)[1]
    _, items = read_catalogue(dataset, EmbeddingStore(args.store),
                              f"{dataset.name}/items/run-{run_folder}")  # [N, D], row i-1 = item i

    raw = dataset.items.sort("item_id")["raw_id"].cast(str).to_list()
    internal = {r: i + 1 for i, r in enumerate(raw)}
    history = [internal[r] for r in args.history.split(",")]  # a KeyError names an unknown id
    seq = np.zeros((1, window), dtype=np.int64)  # left-padded, most recent item last
    kept = history[-window:]
    seq[0, window - len(kept):] = kept

    user = session.run(["user"], {"seq": seq})[0]  # [1, D]
    scores = items @ user[0]  # [N]: item i's score at i-1
    scores[np.array(history) - 1] = -np.inf  # never recommend what the user already had
    for rank, row in enumerate(np.argsort(-scores, kind="stable")[: args.k], start=1):
        print(f"{rank:>3} {raw[row]:<10} {scores[row]:8.4f}")


if __name__ == "__main__":
    main()
