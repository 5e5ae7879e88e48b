"""Deployments and schedules, declared in code: which flow, under what name, when, with what.

`llm4srs serve` turns these into Prefect `RunnerDeployment`s and serves them from one
process (`prefect.serve`); `.deploy(...)` / `prefect deploy` send the same flows to a work
pool instead. Both need a real Prefect server (`prefect server start`, `PREFECT_API_URL`):
schedules and runs triggered from elsewhere go through it, and the embedded temporary
backend that one-off flow calls use is private to its process.

The TSLRec, E4SRec and comparison flows are optional here: their modules are imported
lazily and a missing (or broken) one is skipped with a reason, so `serve` never depends on
every method being present.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import InputError

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from prefect import Flow
    from prefect.deployments.runner import RunnerDeployment


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment: `flow_ref` is `module:attribute` (the attribute may be absent, then
    the module's only flow is used); `cron` is in UTC (Prefect's default time zone)."""

    name: str
    flow_ref: str
    cron: str | None
    parameters: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    optional: bool = False  # skip (not fail) when the module is not importable
    tags: tuple[str, ...] = ()


# Stage 1 weekly, stage 2 nightly after it; all on MovieLens-100k with the CPU defaults.
SPECS: tuple[DeploymentSpec, ...] = (
    DeploymentSpec(
        "embeddings-weekly", "flows.embeddings:embeddings_flow", "0 1 * * 0",
        {"dataset": "movielens-100k", "generators": ["semantic", "sasrec-id", "llmemb"]},
        "stage 1: semantic, sasrec-id and LLMEmb item vectors into the store", tags=("stage1",)),
    DeploymentSpec(
        "srs-nightly", "flows.srs:srs_flow", "0 3 * * *",
        {"request": {"dataset": "movielens-100k", "backbones": ["sasrec", "gru4rec", "bert4rec"],
                     "seeds": [0, 1, 2]}},  # a TrainRequest; the flow checks it once
        "stage 2: ID-only backbones, three seeds (cached runs cost nothing)", tags=("stage2",)),
    DeploymentSpec(
        "tslrec-weekly", "flows.tslrec:tslrec_flow", "0 5 * * 0",
        {"dataset": "movielens-100k"}, "TSLRec embeddings and SRS runs", optional=True,
        tags=("stage1", "stage2")),
    DeploymentSpec(
        "e4srec-weekly", "flows.e4srec:e4srec_flow", "0 7 * * 0",
        {"dataset": "movielens-100k"}, "E4SRec (LLM as the recommender)", optional=True,
        tags=("stage2",)),
    DeploymentSpec(
        "compare-weekly", "flows.compare:compare_flow", "0 12 * * 0",
        {"dataset": "movielens-100k"}, "one table comparing every method", optional=True,
        tags=("report",)),
)


@dataclass(frozen=True)
class Resolved:
    spec: DeploymentSpec
    flow: Flow | None
    parameters: dict[str, Any]
    skipped: str | None = None  # why the deployment is not served
    note: str | None = None  # e.g. declared parameters the flow does not take


def _flow_of(ref: str) -> Flow:
    """Import `module:attr` (or the module's only flow); ImportError when not importable."""
    from prefect import Flow

    module_name, _, attr = ref.partition(":")
    module = importlib.import_module(module_name)
    obj = getattr(module, attr, None) if attr else None
    if isinstance(obj, Flow):
        return obj
    flows = [v for v in vars(module).values()
             if isinstance(v, Flow) and getattr(v.fn, "__module__", None) == module_name]
    if len(flows) != 1:
        raise ImportError(f"{module_name} has {len(flows)} flows and no {attr or 'attribute'}")
    return flows[0]


def resolve(spec: DeploymentSpec) -> Resolved:
    """The spec's flow, with parameters limited to what the flow accepts (a flow still being
    written elsewhere may not take every default parameter declared here)."""
    try:
        flow = _flow_of(spec.flow_ref)
    except ImportError as e:
        if not spec.optional:
            raise
        return Resolved(spec, None, {}, skipped=f"{spec.flow_ref} not importable ({e})")
    accepted = inspect.signature(flow.fn).parameters
    params = {k: v for k, v in spec.parameters.items() if k in accepted}
    dropped = sorted(set(spec.parameters) - set(params))
    note = f"parameters not taken by the flow: {', '.join(dropped)}" if dropped else None
    return Resolved(spec, flow, params, note=note)


def select(only: list[str] | None = None) -> list[DeploymentSpec]:
    """The specs named in `only` (all when None); an unknown name is an input error."""
    if not only:
        return list(SPECS)
    known = {s.name: s for s in SPECS}
    unknown = [n for n in only if n not in known]
    if unknown:
        raise InputError(f"unknown deployment {', '.join(unknown)}; choose from "
                         f"{', '.join(known)}")
    return [known[n] for n in only]


def resolve_all(only: list[str] | None = None) -> list[Resolved]:
    return [resolve(s) for s in select(only)]


def build(only: list[str] | None = None, schedules: bool = True
          ) -> tuple[list[RunnerDeployment], list[Resolved]]:
    """RunnerDeployments for `serve`, plus every resolved spec (skipped ones carry why)."""
    resolved = resolve_all(only)
    deployments = [
        r.flow.to_deployment(
            name=r.spec.name, cron=r.spec.cron if schedules else None,
            parameters=r.parameters, description=r.spec.description, tags=list(r.spec.tags))
        for r in resolved if r.flow is not None
    ]
    return deployments, resolved


def serve(only: list[str] | None = None, schedules: bool = True, limit: int | None = None) -> None:
    """Serve the selected deployments from this process until SIGINT/SIGTERM.

    Flow runs start as subprocesses in this process's working directory, so the default
    relative paths (`data`, `store`, `runs`) are those of the folder `serve` started in.
    """
    from prefect import serve as prefect_serve
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():  # env, or the active profile
        raise InputError("serve needs a Prefect server: run `prefect server start` elsewhere "
                         "and set PREFECT_API_URL=http://127.0.0.1:4200/api")
    deployments, resolved = build(only, schedules)
    for r in resolved:
        if r.skipped or r.note:
            logger.warning("deployment %s: %s", r.spec.name, r.skipped or r.note)
    if not deployments:
        raise InputError("no deployment to serve")
    prefect_serve(*deployments, limit=limit)


def deploy(work_pool: str, only: list[str] | None = None, schedules: bool = True,
           source: str | None = None, image: str | None = None) -> list[str]:
    """Register the deployments with a work pool instead of serving them here; a worker of
    that pool (`prefect worker start --pool NAME`) runs them. Returns the deployment ids.

    `source`: where workers fetch the code (a git URL, or this checkout's folder, the
    default, for workers that see this filesystem); `image`: for docker/kubernetes pools,
    an image you built with the repository installed (not built or pushed here).
    """
    from prefect import Flow

    root = source or str(Path(__file__).resolve().parents[1])
    ids = []
    for r in resolve_all(only):
        if r.flow is None:
            logger.warning("deployment %s: %s", r.spec.name, r.skipped)
            continue
        module = r.spec.flow_ref.partition(":")[0]
        entrypoint = f"{module.replace('.', '/')}.py:{r.flow.fn.__name__}"
        remote = Flow.from_source(source=root, entrypoint=entrypoint)
        ids.append(str(remote.deploy(
            name=r.spec.name, work_pool_name=work_pool, image=image, build=False, push=False,
            cron=r.spec.cron if schedules else None, parameters=r.parameters,
            description=r.spec.description, tags=list(r.spec.tags), print_next_steps=False)))
    return ids
