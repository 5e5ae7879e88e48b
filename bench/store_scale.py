"""Scale check of the embeddings store: write, read, index, search at 1M x 64 and 200k x 576.

Vectors come from a seeded Gaussian mixture (uniform noise has no neighbourhood
structure, so every approximate index scores ~0.1 recall on it and the number means
nothing). Queries are held-out points of the same mixture, slightly perturbed. Recall@10
is the approximate index's top-10 against exact brute-force search on the same queries.

Each size runs in its own subprocess so ``peak_rss_mb`` (ru_maxrss) is per size. Human
lines go to stdout as it runs; the LAST line is a JSON list, one object per size.

    .venv/bin/python bench/store_scale.py                      # both sizes (minutes)
    .venv/bin/python bench/store_scale.py --sizes 100000x64    # quick check
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT))

DEFAULT_SIZES = "1000000x64,200000x576"


def parse_size(text: str) -> tuple[int, int]:
    n, _, d = text.lower().partition("x")
    return int(n), int(d)


def mixture(
    centres: np.ndarray, n: int, sigma: float, seed: int, chunk: int = 0
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Unit-normalised points centre + sigma·N(0, I), streamed in chunks: (labels [m], x [m, D])."""
    rng = np.random.default_rng(seed)
    d = centres.shape[1]
    chunk = chunk or max(1, (32 << 20) // (4 * d))  # ~32 MB of float32 per chunk
    sigma = float(sigma)  # a numpy float64 scalar would promote the chunk to float64
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        labels = rng.integers(0, len(centres), size=m)
        x = centres[labels] + sigma * rng.standard_normal((m, d), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        yield labels, x.astype(np.float32, copy=False)


def peak_mb() -> float:
    """Peak resident memory of this process so far, MB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(n: int, dim: int, args: argparse.Namespace) -> dict[str, object]:
    import faiss

    from embeddings_store import EmbeddingStore, IndexConfig, ManifestInput, Producer

    faiss.omp_set_num_threads(args.threads)
    n_centres = args.centres or max(1000, min(4000, n // 500))
    rng = np.random.default_rng(args.seed)
    centres = rng.standard_normal((n_centres, dim)).astype(np.float32) / np.sqrt(dim)
    sigma = float(args.sigma / np.sqrt(dim))
    ids_of_row = lambda start, m: 1000 + 7 * np.arange(start, start + m, dtype=np.int64)  # noqa: E731

    def chunks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        start = 0
        for _, x in mixture(centres, n, sigma, args.seed + 1):
            yield ids_of_row(start, len(x)), x
            start += len(x)

    own_root = not args.root
    root = Path(args.root) if args.root else Path(tempfile.mkdtemp(prefix="store-bench-"))
    store = EmbeddingStore(root)
    info = ManifestInput(
        dataset_fingerprint="bench",
        producer=Producer(
            generator="bench/store_scale.py", config={"n": n, "dim": dim, "centres": n_centres}
        ),
        metric="cosine",
        normalized=True,
    )
    cfg = IndexConfig(threads=args.threads, nprobe=args.nprobe, nlist=args.nlist)
    t0 = time.perf_counter()
    ref = store.write_chunks("bench", f"items/mix{n}x{dim}", chunks(), dim, info, index=cfg)
    write_total = time.perf_counter() - t0
    manifest = store.manifest(ref)
    assert manifest.index is not None
    index_s = manifest.index.build_s
    print(
        f"[{n}x{dim}] wrote {ref} in {write_total:.1f}s "
        f"(index {manifest.index.factory} {index_s:.1f}s); peak {peak_mb():.0f} MB",
        flush=True,
    )

    t0 = time.perf_counter()
    ids, vectors = store.read(ref)  # [N], [N, D]
    read_s = time.perf_counter() - t0
    print(f"[{n}x{dim}] read {vectors.shape} in {read_s:.2f}s; peak {peak_mb():.0f} MB", flush=True)

    _, queries = next(mixture(centres, args.queries, sigma, args.seed + 2, chunk=args.queries))
    queries = queries + 0.05 * sigma * np.random.default_rng(args.seed + 3).standard_normal(
        queries.shape, dtype=np.float32
    )

    t0 = time.perf_counter()
    index = store.open_index(ref, mmap=True)
    open_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    approx, _ = index.search(queries, args.k)  # [Q, k] ids
    search_s = time.perf_counter() - t0
    print(f"[{n}x{dim}] approximate search {args.queries} queries in {search_s:.2f}s", flush=True)

    qn = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    t0 = time.perf_counter()
    _, rows = faiss.knn(
        np.ascontiguousarray(qn, dtype=np.float32),
        vectors,
        args.k,
        metric=faiss.METRIC_INNER_PRODUCT,
    )
    exact_s = time.perf_counter() - t0
    exact = ids[rows]  # rows → ids, [Q, k]
    recall = float(
        np.mean([len(np.intersect1d(a, e)) / args.k for a, e in zip(approx, exact, strict=True)])
    )
    print(f"[{n}x{dim}] exact search in {exact_s:.2f}s; recall@{args.k} = {recall:.4f}", flush=True)
    disk = sum(f.size for f in manifest.files.values())
    del index, vectors, ids
    if own_root:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "n": n,
        "dim": dim,
        "centres": n_centres,
        "threads": args.threads,
        "write_s": round(write_total - index_s, 2),
        "read_s": round(read_s, 2),
        "index_s": round(index_s, 2),
        "index_open_s": round(open_s, 3),
        "search_s": round(search_s, 2),
        "exact_search_s": round(exact_s, 2),
        "queries": args.queries,
        "k": args.k,
        "recall_at_10" if args.k == 10 else f"recall_at_{args.k}": round(recall, 4),
        "index_type": manifest.index.type,
        "index_factory": manifest.index.factory,
        "index_params": manifest.index.params,
        "disk_mb": round(disk / 2**20, 1),
        "peak_rss_mb": round(peak_mb(), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--sizes", default=DEFAULT_SIZES, help=f"comma list of NxD (default {DEFAULT_SIZES})"
    )
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument(
        "--centres", type=int, default=0, help="mixture centres (default n/500 in 1000..4000)"
    )
    ap.add_argument(
        "--sigma",
        type=float,
        default=1.2,
        help="cluster spread relative to centre spread (1.0: easy, 1.4: hard)",
    )
    ap.add_argument("--nprobe", type=int, default=None, help="override the heuristic's nprobe")
    ap.add_argument("--nlist", type=int, default=None, help="override the heuristic's nlist")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--root", default=None, help="store root (default: a fresh temp dir per size)")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: run one size here
    args = ap.parse_args()

    if args.one:
        print(json.dumps(run_one(*parse_size(args.one), args)), flush=True)
        return

    env = dict(os.environ)
    # Measured on the 2-core machines: spinning OpenMP threads lose badly under contention.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    results = []
    passthrough = [a for a in sys.argv[1:] if not a.startswith("--sizes")]
    if "--sizes" in sys.argv:
        i = sys.argv.index("--sizes")
        passthrough = sys.argv[1:i] + sys.argv[i + 2 :]
    for size in args.sizes.split(","):
        print(
            f"== {size} ({args.threads} threads, OMP_WAIT_POLICY={env['OMP_WAIT_POLICY']})",
            flush=True,
        )
        proc = subprocess.run(
            [sys.executable, __file__, "--one", size, *passthrough],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
            check=False,
        )
        lines = proc.stdout.strip().splitlines()
        for line in lines[:-1]:
            print(line, flush=True)
        if proc.returncode != 0 or not lines:
            raise SystemExit(f"size {size} failed with exit code {proc.returncode}")
        result = json.loads(lines[-1])
        print(
            f"   {size}: write {result['write_s']}s, read {result['read_s']}s, index {result['index_s']}s, "
            f"search {result['search_s']}s, recall@{args.k} {result.get('recall_at_10')}, "
            f"peak RSS {result['peak_rss_mb']} MB",
            flush=True,
        )
        results.append(result)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
