"""Subprocess entry of the kill-and-resume tests: `python fault_worker.py MODE ARGS_JSON`.

Modes (each writes its outcome as JSON to args["out"]):
- srs:  train_srs of a tiny SASRec on the session's synthetic dataset (already prepared),
        once per entry of args["jobs"] ({run_dir, resume, pause}), one after the other;
        sleeps `pause` s after each epoch's checkpoint, so a test can kill it mid-run.
- scft: run_scft with the tiny random LLaMA, per job likewise; sleeps `pause` s after
        each optimizer step.
- flow: srs_flow (Prefect, embedded server) on pop + a tiny SASRec; reports every task run's
        final state name and, for each train_srs call, the epoch its last.pt held on entry.
The sleeps only stretch wall time; they touch no random stream and no computed value.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

SYNTHETIC = {"users": 200, "items": 500, "seed": 0}
SRS_OVERRIDES = {"epochs": 6, "patience": 100, "model.dim": 16, "model.max_len": 20,
                 "batch_size": 32, "threads": 1, "device": "cpu"}


def _dataset(data_dir: str):
    from pipeline.data.config import DataConfig
    from pipeline.data.prepare import prepare_dataset

    return prepare_dataset(DataConfig(source="synthetic", synthetic=SYNTHETIC), Path(data_dir))


def _last_epoch(run_dir: Path) -> int:
    from pipeline import checkpoint

    last = run_dir / "last.pt"
    return int(checkpoint.load(last)["state"]["epoch"]) if last.is_file() else 0


def srs(args: dict) -> list[dict]:
    from pipeline.config import load_train_config
    from pipeline.split import leave_one_out
    from pipeline.train import train_srs

    split = leave_one_out(_dataset(args["data_dir"]))
    cfg = load_train_config("sasrec", SRS_OVERRIDES)
    out = []
    for job in args["jobs"]:
        run_dir = Path(job["run_dir"])
        start = _last_epoch(run_dir) if job["resume"] else 0
        result = train_srs(split, cfg, run_dir, resume=job["resume"], progress=False,
                           on_epoch_end=lambda epoch, loss, pause=job["pause"]: time.sleep(pause))
        out.append({"start_epoch": start, "test": result.test_rows, "valid": result.valid_rows,
                    "best_epoch": result.best_epoch, "epochs_run": result.epochs_run})
    return out


def scft(args: dict) -> list[dict]:
    import numpy as np
    from safetensors.numpy import load_file
    from sentence_transformers import SentenceTransformerTrainer

    from pipeline.llm import LLMSpec
    from pipeline.methods.llmemb.config import ScftConfig
    from pipeline.methods.llmemb.scft import run_scft

    step = SentenceTransformerTrainer.training_step
    pause = {"s": 0.0}

    def slow_step(self, *a, **k):
        out = step(self, *a, **k)
        time.sleep(pause["s"])
        return out

    SentenceTransformerTrainer.training_step = slow_step
    cfg = ScftConfig(**args["config"])
    spec = LLMSpec(source=args["model"], dtype="fp32", device="cpu", batch_size=16)
    dataset = _dataset(args["data_dir"])
    out = []
    for job in args["jobs"]:
        pause["s"] = job["pause"]
        run_dir = Path(job["run_dir"])
        _, vectors, info = run_scft(dataset, cfg, spec, run_dir, resume=job["resume"],
                                    cache_dir=Path(args["cache_dir"]))
        np.save(run_dir / "vectors.npy", vectors)
        adapter = next((run_dir / "adapter").glob("*.safetensors"))
        np.savez(run_dir / "adapter.npz", **load_file(str(adapter)))
        out.append({"steps": info["steps"], "resumed_from": info["resumed_from"],
                    "tau": info["tau"], "losses": info["losses"]})
    return out


def flow(args: dict) -> dict:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    import pipeline.train
    from flows.srs import srs_flow
    from pipeline.requests import TrainRequest

    calls: list[dict] = []
    real = pipeline.train.train_srs

    def recorded(split, cfg, run_dir, *a, **k):
        calls.append({"backbone": cfg.backbone, "run_dir": str(run_dir),
                      "resume": bool(k.get("resume")), "start_epoch": _last_epoch(Path(run_dir))})
        return real(split, cfg, run_dir, *a, **k)

    pipeline.train.train_srs = recorded
    request = TrainRequest(dataset="synthetic", backbones=["pop", "sasrec"], seeds=[0],
                           overrides=args["overrides"], data_dir=args["data_dir"],
                           runs_dir=args["runs_dir"], resume=True)
    state = srs_flow(request, return_state=True)
    results = state.result()
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
    return {"results": results, "task_states": {r.name: r.state.name for r in runs},
            "train_calls": calls}


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ (tiny_models)
    mode, payload = sys.argv[1], json.loads(sys.argv[2])
    outcome = {"srs": srs, "scft": scft, "flow": flow}[mode](payload)
    Path(payload["out"]).write_text(json.dumps(outcome, default=str))
