"""LLM-ESR's neighbour search at scale: top-100 similar users for every one of 1M users.

RASD (METHODS.md §3.4) needs, for each user, the users nearest to it by LLM user
embedding. This bench does that search the way `pipeline/distill.retrieve_neighbours`
does: the user vectors go into the embeddings store (which picks and tunes the index by
size: IVF,Flat at 1M x 64), users query the index for k+1 neighbours (every user with
--queries 0), and each drops itself. Vectors come from a seeded Gaussian mixture (uniform noise has no
neighbourhood structure; see bench/store_scale.py), unit-normalised, cosine metric.

Reported: build seconds (Parquet write and index build), search seconds (for --queries
users, and extrapolated to all: IVF search cost is linear in the number of queries),
peak RSS (ru_maxrss), and recall@k of the approximate neighbours against exact
brute-force search (faiss.knn over every vector) for a seeded sample of users.
Human lines go to stdout; the LAST line is one JSON object.

    .venv/bin/python bench/neighbour_search.py --quick      # 200k users, 20k searching
    .venv/bin/python bench/neighbour_search.py              # 1M users x 64, top-100, 100k searching
    .venv/bin/python bench/neighbour_search.py --queries 0  # every user searches (as RASD does)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # spinning OpenMP loses on 2 loaded cores


def peak_mb() -> float:
    """Peak resident memory of this process so far, MB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def user_vectors(n: int, dim: int, centres: int, sigma: float, seed: int,
                 chunk: int = 131_072) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(user ids [m] = 1.., unit vectors [m, D]) chunks of a seeded Gaussian mixture:
    centre + sigma/sqrt(D)·N(0, I), with centres ~ N(0, I/D) (taste groups of users)."""
    rng = np.random.default_rng(seed)
    mu = rng.standard_normal((centres, dim), dtype=np.float32) / np.float32(np.sqrt(dim))
    s = np.float32(sigma / np.sqrt(dim))
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        x = mu[rng.integers(0, centres, size=m)] + s * rng.standard_normal((m, dim), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        yield np.arange(start + 1, start + m + 1, dtype=np.int64), x


def drop_self(found: np.ndarray, ids: np.ndarray, k: int) -> np.ndarray:
    """[Q, k+1] ids -> [Q, k]: each row without its own id (wherever it ranks), in order."""
    keep = (found != ids[:, None]) & (found > 0)
    order = np.argsort(~keep, axis=1, kind="stable")[:, :k]
    return np.where(np.take_along_axis(keep, order, axis=1), np.take_along_axis(found, order, axis=1), -1)


def run(args: argparse.Namespace) -> dict[str, object]:
    import faiss

    from embeddings_store import EmbeddingStore, IndexConfig, ManifestInput, Producer

    faiss.omp_set_num_threads(args.threads)
    n, dim, k = args.users, args.dim, args.k
    centres = args.centres or max(100, n // 500)
    root = Path(args.root) if args.root else Path(tempfile.mkdtemp(prefix="nbr-bench-"))
    store = EmbeddingStore(root)
    info = ManifestInput(
        dataset_fingerprint="bench",
        producer=Producer(generator="bench/neighbour_search.py",
                          config={"n": n, "dim": dim, "centres": centres, "sigma": args.sigma,
                                  "history": "train"}),
        metric="cosine", normalized=True)
    cfg = IndexConfig(threads=args.threads)  # everything else: the store's own choice
    print(f"== {n:,} users x {dim}, top-{k}, {args.threads} threads, {centres} mixture centres, "
          f"sigma {args.sigma}", flush=True)

    t0 = time.perf_counter()
    ref = store.write_chunks("bench", "users/mixture", user_vectors(n, dim, centres, args.sigma,
                                                                     args.seed), dim, info, index=cfg)
    build_s = time.perf_counter() - t0
    manifest = store.manifest(ref)
    assert manifest.index is not None
    index_s = manifest.index.build_s
    print(f"build: {build_s:.1f} s (index {manifest.index.factory} {index_s:.1f} s, "
          f"params {manifest.index.params}); peak {peak_mb():.0f} MB", flush=True)

    ids, vectors = store.read(ref)  # [N], [N, D], zero-copy
    index = store.open_index(ref, mmap=True)
    q = n if not args.queries else min(args.queries, n)
    neighbours = np.empty((q, k), dtype=np.int32)  # [Q, k] user ids; int32 halves the table
    t0 = time.perf_counter()
    for start in range(0, q, args.chunk):  # chunks bound the [c, k+1] ids/scores and temporaries
        stop = min(start + args.chunk, q)
        found, _ = index.search(np.asarray(vectors[start:stop]), k + 1)  # [c, k+1], self included
        neighbours[start:stop] = drop_self(found, ids[start:stop], k)
    search_s = time.perf_counter() - t0
    print(f"search: {q:,} users in {search_s:.1f} s ({q / search_s:,.0f} users/s); "
          f"peak {peak_mb():.0f} MB", flush=True)

    rows = np.sort(np.random.default_rng(args.seed + 1).choice(q, size=min(args.sample, q),
                                                                replace=False))
    t0 = time.perf_counter()
    _, exact_rows = faiss.knn(np.ascontiguousarray(vectors[rows]), vectors, k + 1,
                              metric=faiss.METRIC_INNER_PRODUCT)  # exact, [S, k+1] rows
    exact_s = time.perf_counter() - t0
    exact = drop_self(ids[exact_rows], ids[rows], k)
    recall = float(np.mean([len(np.intersect1d(a[a > 0], e[e > 0])) / k
                            for a, e in zip(neighbours[rows], exact, strict=True)]))
    exact_per_user = exact_s / len(rows)
    print(f"exact: {len(rows):,} sampled users in {exact_s:.1f} s; recall@{k} = {recall:.4f}",
          flush=True)

    sweep = []  # the recall/time trade-off around the store's choice, on the sampled users
    knob = "nprobe" if "nprobe" in manifest.index.params else "ef_search"
    base = manifest.index.params.get(knob)
    for value in (sorted({max(1, base // 4), max(1, base // 2), base, 2 * base}) if base else []):
        t0 = time.perf_counter()
        found, _ = index.search(np.ascontiguousarray(vectors[rows]), k + 1, **{knob: value})
        per_user = (time.perf_counter() - t0) / len(rows)
        got = drop_self(found, ids[rows], k)
        r = float(np.mean([len(np.intersect1d(a[a > 0], e[e > 0])) / k
                           for a, e in zip(got, exact, strict=True)]))
        sweep.append({knob: value, f"recall_at_{k}": round(r, 4),
                      "all_users_s_estimate": round(per_user * n, 1)})
        print(f"  {knob} {value:4d}: recall@{k} {r:.4f}, ~{per_user * n:.0f} s for all {n:,} users",
              flush=True)

    disk = sum(f.size for f in manifest.files.values())
    raw_mb = n * dim * 4 / 2**20
    result = {
        "users": n, "dim": dim, "k": k, "threads": args.threads, "centres": centres,
        "sigma": args.sigma, "index_factory": manifest.index.factory,
        "index_params": manifest.index.params,
        "build_s": round(build_s, 1), "index_build_s": round(index_s, 1),
        "search_users": q, "search_s": round(search_s, 1),
        "users_per_s": round(q / search_s, 1),
        "all_users_search_s_estimate": round(search_s * n / q, 1),
        f"recall_at_{k}": round(recall, 4), "recall_sample": len(rows),
        "exact_s_per_user": round(exact_per_user, 5),
        "exact_all_users_s_estimate": round(exact_per_user * n, 1),
        "speedup_vs_exact": round(exact_per_user * q / search_s, 1),
        "peak_rss_mb": round(peak_mb(), 1), "raw_vectors_mb": round(raw_mb, 1),
        "peak_rss_over_raw": round(peak_mb() / raw_mb, 2),
        "neighbour_table_mb": round(neighbours.nbytes / 2**20, 1),
        "sweep": sweep,
        "disk_mb": round(disk / 2**20, 1),
    }
    print(f"ratios: search {result['speedup_vs_exact']}x faster than exact (all {n:,} users: "
          f"~{result['all_users_search_s_estimate']} s, exact ~"
          f"{result['exact_all_users_s_estimate']} s); peak RSS "
          f"{result['peak_rss_over_raw']}x the raw vectors ({raw_mb:.0f} MB); "
          f"{1000 * search_s / q:.2f} ms per user", flush=True)
    del index, vectors, ids, neighbours
    if not args.root:
        shutil.rmtree(root, ignore_errors=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--k", type=int, default=100, help="neighbours per user (LLM-ESR stores 100)")
    ap.add_argument("--queries", type=int, default=None,
                    help="users that search (default 100,000; 0: all, as RASD needs; IVF search "
                         "time is linear in queries, so the all-users time is extrapolated)")
    ap.add_argument("--sample", type=int, default=2000, help="users checked against exact search")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--centres", type=int, default=0, help="mixture centres (default users/500)")
    ap.add_argument("--sigma", type=float, default=1.2,
                    help="cluster spread relative to centre spread (1.0: easy, 1.4: hard)")
    ap.add_argument("--chunk", type=int, default=65_536, help="users searched per call")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--root", default=None, help="store root (default: a temp dir, removed)")
    ap.add_argument("--quick", action="store_true",
                    help="200k users (IVF like 1M; fewer is HNSW), 20k searching, 500 checked")
    args = ap.parse_args()
    if args.quick:
        args.users, args.sample = 200_000, 500
        args.queries = 20_000 if args.queries is None else args.queries
    args.queries = 100_000 if args.queries is None else args.queries
    print(json.dumps(run(args)))


if __name__ == "__main__":
    main()
