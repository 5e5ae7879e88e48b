"""TSLRec flow: user-level preference-reconstruction SFT → `items/tslrec` (resumable).

The task is cached on content (dataset fingerprint + LLM spec + TslrecConfig + the exact
upstream `items/sasrec-id` version), so a new SASRec table reruns TSLRec and an
unchanged re-run does nothing. The umbrella `embeddings` flow calls the same task after
its `sasrec_id` task; `tslrec_flow` runs it on the store's current SASRec table.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from embeddings_store import EmbeddingStore
from flows.common import prepare
from pipeline.data.dataset import Dataset, read_fingerprint
from pipeline.embed.tslrec import SASREC_KIND, TslrecConfig, report_markdown, write_tslrec
from pipeline.llm import LLMSpec
from pipeline.split import leave_one_out


def _digest(spec: LLMSpec, cfg: TslrecConfig, sasrec_ref: str) -> str:
    parts = (spec.model_dump_json(), cfg.model_dump_json(), sasrec_ref)
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:12]


def _tslrec_key(context, params) -> str:
    fp = read_fingerprint(Path(params["dataset_path"]))
    digest = _digest(LLMSpec(**params["llm"]), TslrecConfig(**params["config"]), params["sasrec_ref"])
    return f"tslrec-{fp}-{digest}-{params['store_root']}"


@task(cache_key_fn=_tslrec_key, persist_result=True)
def tslrec(dataset_path: str, llm: dict, config: dict, sasrec_ref: str, store_root: str,
           runs_dir: str) -> str:
    """k-means on `sasrec_ref` → per-user category histograms → LoRA SFT → item vectors.

    Checkpoints in runs/<dataset>/tslrec-<hash>/; a rerun after a kill resumes there.
    """
    ds = Dataset.load(Path(dataset_path))
    spec, cfg = LLMSpec(**llm), TslrecConfig(**config)
    run_dir = Path(runs_dir) / ds.name / f"tslrec-{_digest(spec, cfg, sasrec_ref)}"
    ref = write_tslrec(ds, leave_one_out(ds), cfg, spec, EmbeddingStore(store_root), run_dir,
                       sasrec_ref=sasrec_ref, resume=True)
    get_run_logger().info("wrote %s", ref)
    return str(ref)


def publish_tslrec(store_root: str, ref: str) -> None:
    """A markdown artifact with the held-out reconstruction numbers of a stored version."""
    store = EmbeddingStore(store_root)
    version = store.resolve(ref)
    create_markdown_artifact(report_markdown(version.dataset, ref, store.manifest(version).metrics),
                             key="tslrec", description="TSLRec held-out preference reconstruction")


@flow(name="tslrec")
def tslrec_flow(dataset: str = "movielens-100k", llm: dict | None = None,
                config: dict | None = None, sasrec_ref: str = SASREC_KIND, data_dir: str = "data",
                store_root: str = "store", runs_dir: str = "runs", refresh: bool = False) -> str:
    """TSLRec on an existing SASRec table (`sasrec_ref`, default the current
    `items/sasrec-id`); returns the `items/tslrec` version."""
    path = prepare(dataset, data_dir)
    name = Dataset.load(Path(path)).name
    exact = str(EmbeddingStore(store_root).resolve(sasrec_ref, dataset=name))
    ref = tslrec.with_options(refresh_cache=refresh)(path, llm or {}, config or {}, exact,
                                                     store_root, runs_dir)
    publish_tslrec(store_root, ref)
    return ref
