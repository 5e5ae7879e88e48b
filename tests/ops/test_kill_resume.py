"""Fault proof: SIGKILL a training run and an SCFT run mid-way, resume, end where an
uninterrupted run with the same seed ends.

Runs are real subprocesses (tests/ops/fault_worker.py): one that gets killed, then one
that resumes it and runs the uninterrupted reference. The worker sleeps after each epoch /
step (no random stream is touched) so the kill lands between the first checkpoint and the
end. Measured on CPU, one thread: resumed and reference agree bit for bit; the tolerances
only leave room for other hardware.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.ops
WORKER = Path(__file__).with_name("fault_worker.py")
REPO = Path(__file__).resolve().parents[2]


def start(mode: str, args: dict, log: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    with open(log, "w") as f:
        return subprocess.Popen([sys.executable, str(WORKER), mode, json.dumps(args)], cwd=REPO,
                                env=env, stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True)


def finish(proc: subprocess.Popen, args: dict, log: Path, timeout: float = 900) -> dict:
    rc = proc.wait(timeout=timeout)
    assert rc == 0, log.read_text()[-3000:]
    return json.loads(Path(args["out"]).read_text())


def kill_when(proc: subprocess.Popen, ready: Callable[[], bool], log: Path,
              timeout: float = 900) -> None:
    """SIGKILL the worker's whole process group as soon as `ready()` holds."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"worker ended before the kill point:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, "kill point never reached"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _rows(rows: list[dict]) -> dict[tuple, float]:
    return {(r["protocol"], r["group"], r["metric"]): r["value"] for r in rows}


def test_srs_killed_mid_training_resumes_to_the_same_metrics(synthetic_dataset, tmp_path):
    from pipeline import checkpoint

    base = {"data_dir": str(synthetic_dataset.path.parents[1])}  # prepared once; reused
    cut, whole = str(tmp_path / "cut"), str(tmp_path / "whole")
    first = {**base, "jobs": [{"run_dir": cut, "resume": False, "pause": 0.4}],
             "out": str(tmp_path / "first.json")}
    proc = start("srs", first, tmp_path / "first.log")
    last = Path(cut) / "last.pt"

    def two_epochs_saved() -> bool:
        return last.is_file() and checkpoint.load(last)["state"]["epoch"] >= 2

    kill_when(proc, two_epochs_saved, tmp_path / "first.log")
    killed_at = checkpoint.load(last)["state"]["epoch"]
    assert 2 <= killed_at < 6 and not (Path(cut) / "result.json").exists()

    # One process: resume the killed run, then the uninterrupted reference (same seed).
    second = {**base, "jobs": [{"run_dir": cut, "resume": True, "pause": 0.0},
                               {"run_dir": whole, "resume": False, "pause": 0.0}],
              "out": str(tmp_path / "second.json")}
    resumed, ref = finish(start("srs", second, tmp_path / "second.log"), second,
                          tmp_path / "second.log")
    assert resumed["start_epoch"] == killed_at  # continued from the checkpoint, not from 0
    assert resumed["epochs_run"] == ref["epochs_run"] == 6
    assert resumed["best_epoch"] == ref["best_epoch"]
    for split in ("test", "valid"):
        got, want = _rows(resumed[split]), _rows(ref[split])
        assert got.keys() == want.keys() and len(got) > 20
        worst = max(abs(got[k] - want[k]) for k in want)
        print(f"SRS resume from epoch {killed_at}: {split} max |Δ metric| {worst:.2e}")
        assert worst <= 1e-6, split


TINY_SCFT = {"max_steps": 8, "save_steps": 2, "batch_size": 8, "max_length": 32, "lr": 1e-2,
             "encode_batch_size": 64}


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory, synthetic_dataset) -> Path:
    from tiny_models import save_tiny_llama, word_tokenizer

    from pipeline.prompts import PromptConfig, item_texts

    tok = word_tokenizer(item_texts(synthetic_dataset.items, PromptConfig())[1], cls=False)
    return save_tiny_llama(tmp_path_factory.mktemp("ops-tiny-llama"), tok)


@pytest.mark.slow
def test_scft_killed_after_a_checkpoint_resumes_to_the_same_adapter(synthetic_dataset,
                                                                     tiny_llama, tmp_path):
    from pipeline.methods.llmemb.scft import last_checkpoint

    base = {"data_dir": str(synthetic_dataset.path.parents[1]), "model": str(tiny_llama),
            "config": TINY_SCFT, "cache_dir": str(tmp_path / "cache")}
    cut, whole = tmp_path / "cut", tmp_path / "whole"
    first = {**base, "jobs": [{"run_dir": str(cut), "resume": False, "pause": 1.0}],
             "out": str(tmp_path / "first.json")}
    proc = start("scft", first, tmp_path / "first.log")
    kill_when(proc, lambda: last_checkpoint(cut / "checkpoints") is not None,
              tmp_path / "first.log")
    saved = last_checkpoint(cut / "checkpoints")
    assert saved is not None and saved.name != "checkpoint-8"  # killed before the end
    assert not (cut / "adapter").exists()

    second = {**base, "jobs": [{"run_dir": str(cut), "resume": True, "pause": 0.0},
                               {"run_dir": str(whole), "resume": False, "pause": 0.0}],
              "out": str(tmp_path / "second.json")}
    resumed, ref = finish(start("scft", second, tmp_path / "second.log"), second,
                          tmp_path / "second.log")
    assert resumed["resumed_from"] == saved.name and ref["resumed_from"] is None
    assert resumed["steps"] == ref["steps"] == 8
    # The loss history up to the checkpoint comes back with the trainer state; after it,
    # every step's loss is recomputed and must match the reference's.
    assert len(resumed["losses"]) == len(ref["losses"]) == 8
    assert np.allclose(resumed["losses"], ref["losses"], rtol=1e-5, atol=1e-6)
    assert resumed["tau"] == pytest.approx(ref["tau"], rel=1e-6)
    a, b = np.load(whole / "adapter.npz"), np.load(cut / "adapter.npz")
    assert sorted(a.files) == sorted(b.files) and len(a.files) > 0
    worst = max(float(np.abs(a[k] - b[k]).max()) for k in a.files)
    va, vb = np.load(whole / "vectors.npy"), np.load(cut / "vectors.npy")
    print(f"SCFT resume from {saved.name}: max |Δ adapter| {worst:.2e}, "
          f"max |Δ vector| {float(np.abs(va - vb).max()):.2e}, τ {resumed['tau']} vs {ref['tau']}")
    assert worst <= 1e-5
    assert va.shape == vb.shape == (synthetic_dataset.n_items, 32)
    assert float(np.abs(va - vb).max()) <= 1e-4


def test_a_checkpoint_killed_inside_its_save_is_not_resumed_from(tmp_path):
    """The trainer writes trainer_state.json last, SaveTau writes τ after it: a folder
    without both is a save the kill interrupted, and resume takes the one before."""
    from pipeline.methods.llmemb.scft import TAU_FILE, last_checkpoint

    for step, files in ((2, ["trainer_state.json", TAU_FILE]), (4, ["trainer_state.json"]),
                        (6, ["adapter_model.safetensors"])):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        for name in files:
            (folder / name).write_text("{}")
    assert last_checkpoint(tmp_path).name == "checkpoint-2"
