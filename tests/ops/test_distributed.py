"""Multi-process training (`nproc`, pipeline/distributed.py) on 2 gloo processes on CPU.

- Two processes with the same global batch reach the metrics of one process (dropout 0,
  fp32: bf16 autocast rounds differently on differently shaped row slices).
- Evaluation ranks every user exactly once (contiguous shards, no padded duplicates).
- A SIGKILLed rank stops the run with one clear error (no hang), and a resumed run ends
  where an uninterrupted two-process run ends.
Measured on 2 shared CPU cores: the one- and two-process metrics agree exactly; each
launch costs a few seconds of process start-up (spawn, imports).
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import replace

import numpy as np
import psutil
import pytest
import torch

pytestmark = pytest.mark.ops

TINY = {"model.dim": 16, "model.max_len": 20, "model.dropout": 0.0, "epochs": 4,
        "patience": 10, "batch_size": 32, "bf16": False, "threads": 1, "device": "cpu"}
TOL = 1e-4


def _cfg(backbone: str = "sasrec", **extra):
    from pipeline.config import load_train_config

    return load_train_config(backbone, {**TINY, **extra})


def _rows(rows: list[dict]) -> dict[tuple, float]:
    return {(r["protocol"], r["group"], r["metric"]): r["value"] for r in rows}


def _assert_same_metrics(got, want) -> None:
    for split in ("valid_rows", "test_rows"):
        a, b = _rows(getattr(got, split)), _rows(getattr(want, split))
        assert a.keys() == b.keys() and len(a) > 20
        worst = max(abs(a[k] - b[k]) for k in b)
        print(f"{split}: max |Δ metric| {worst:.2e}")
        assert worst <= TOL, split
    assert got.best_epoch == want.best_epoch and got.epochs_run == want.epochs_run


@pytest.fixture(scope="module")
def two_process_run(synthetic_split, tmp_path_factory):
    """An uninterrupted 2-process SASRec run (the reference of two tests)."""
    from pipeline.train import train_srs

    run_dir = tmp_path_factory.mktemp("dist") / "two"
    return train_srs(synthetic_split, _cfg(nproc=2), run_dir, progress=False), run_dir


def test_two_processes_match_one_process(synthetic_split, two_process_run, tmp_path):
    import json

    from pipeline.train import train_srs

    two, run_dir = two_process_run
    one = train_srs(synthetic_split, _cfg(), tmp_path / "one", progress=False)
    _assert_same_metrics(two, one)
    overall = [r for r in two.valid_rows if r["group"] == "overall"]
    assert {r["n_users"] for r in overall} == {synthetic_split.n_users}
    saved = json.loads((run_dir / "result.json").read_text())
    assert saved["distributed"] == {"nproc": 2, "rank_seeds": [0, 1], "backend": "gloo"}
    last = torch.load(run_dir / "last.pt", weights_only=True)
    assert len(last["rank_rng"]) == 2 and not any(k.startswith("module.") for k in last["model"])
    assert "distributed" not in json.loads((tmp_path / "one" / "result.json").read_text())


def test_bert4rec_sampled_softmax_two_processes_match_one(synthetic_split, tmp_path):
    """Cloze masks, the shared negatives (batch-wide) and the sparse item table's rows all
    come out as in one process."""
    from pipeline.train import train_srs

    cfg = {"model.loss": "sampled", "model.negatives": 50, "epochs": 2}
    one = train_srs(synthetic_split, _cfg("bert4rec", **cfg), tmp_path / "one", progress=False)
    two = train_srs(synthetic_split, _cfg("bert4rec", nproc=2, **cfg), tmp_path / "two",
                    progress=False)
    _assert_same_metrics(two, one)


def test_nproc_is_a_setting_outside_the_config_hash(synthetic_dataset, monkeypatch, capsys):
    """`--nproc N` and `--set nproc=N` reach TrainConfig; cached runs keep their hash."""
    import sys

    import llm4srs.cli as cli

    one, two = _cfg(), _cfg(nproc=2)
    assert two.nproc == 2 and two.config_hash() == one.config_hash()
    seen: list = []
    monkeypatch.setattr(cli, "run_flow", lambda flow, request: seen.append(request) or "x")
    monkeypatch.setattr(cli, "print_rows", lambda *a, **k: None)
    data_dir = str(synthetic_dataset.path.parents[1])
    for flag in (["--nproc", "3"], ["--set", "nproc=3"]):
        monkeypatch.setattr(sys, "argv", ["llm4srs", "train", "--dataset", "synthetic",
                                          "--data-dir", data_dir, *flag])
        with pytest.raises(SystemExit) as exc:
            cli.main()
        assert exc.value.code == 0, capsys.readouterr().err
    assert [r.configs["sasrec"].nproc for r in seen] == [3, 3]


def test_nproc_refused_where_it_cannot_apply(synthetic_split, tmp_path, monkeypatch):
    from pipeline.errors import InputError
    from pipeline.requests import TrainRequest
    from pipeline.train import train_srs

    monkeypatch.setattr(TrainRequest, "_check_kinds", lambda self, name: None)  # no store here
    with pytest.raises(InputError, match="--method srs only"):
        TrainRequest(dataset="synthetic", method="llmesr", embedding="items/x",
                     overrides={"nproc": 2, "llmesr.distill_weight": 0},
                     store_root=str(tmp_path / "store")).checked()
    with pytest.raises(InputError, match="auxiliary loss"):
        train_srs(synthetic_split, _cfg(nproc=2), tmp_path / "aux", progress=False,
                  aux_loss=lambda model, batch: torch.zeros(()))


def test_shards_cover_every_user_once():
    from pipeline.distributed import row_slice, shard_users

    for n in (0, 1, 2, 3, 7, 199, 200):
        for world in (1, 2, 3, 4, 8):
            parts = [shard_users(n, r, world) for r in range(world)]
            assert np.array_equal(np.concatenate(parts), np.arange(n))  # contiguous, in order
            assert max(map(len, parts)) - min(map(len, parts)) <= 1
            assert sum(row_slice(n, r, world).stop - row_slice(n, r, world).start
                       for r in range(world)) == n


def _rank_an_odd_split(team, split, cfg):
    """One rank: a seeded model, this rank's users, the gathered ranks and rows."""
    from pipeline.distributed import shard_users
    from pipeline.evaluate import EvalConfig, rank_users
    from pipeline.train import build_model, model_scorer

    torch.manual_seed(0)
    model = build_model(cfg, split.n_items).eval()
    scorer = model_scorer(model)
    mine = shard_users(split.n_users, team.rank, team.world)
    local = rank_users(scorer, split, "test", EvalConfig(batch_size=16), users=mine)
    gathered = {p: team.gather_users(r, split.n_users) for p, r in local.items()}
    rows = team.evaluate(scorer, split, "test", EvalConfig(batch_size=16))
    sampled = team.evaluate(scorer, split, "test", EvalConfig(batch_size=16, user_sample=57))
    users = team.gather_users(mine, split.n_users)
    return ({"users": users, "ranks": gathered, "rows": rows, "sampled": sampled}
            if team.is_lead else None)


def test_every_user_is_evaluated_exactly_once(synthetic_split):
    from pipeline.distributed import _Given, launch, portable
    from pipeline.evaluate import EvalConfig, evaluate, rank_users
    from pipeline.train import build_model, model_scorer

    split = portable(synthetic_split)
    n = split.n_users - 1  # odd: shards of 99 and 100 users
    split = replace(split, train=split.train[:n], valid=split.valid[:n], test=split.test[:n],
                    negatives_of=_Given(split.negatives[:n]))
    cfg = _cfg()
    got = launch(_rank_an_odd_split, (split, cfg), 2, torch.device("cpu"), threads=1)

    assert np.array_equal(got["users"], np.arange(n))  # each user once, none padded in
    torch.manual_seed(0)
    scorer = model_scorer(build_model(cfg, split.n_items).eval())
    want = rank_users(scorer, split, "test", EvalConfig(batch_size=16))
    assert got["ranks"].keys() == want.keys()
    for protocol, ranks in want.items():
        assert len(got["ranks"][protocol]) == n
        assert np.array_equal(got["ranks"][protocol], ranks)
    assert got["rows"] == evaluate(scorer, split, "test", EvalConfig(batch_size=16))
    assert {r["n_users"] for r in got["rows"] if r["group"] == "overall"} == {n}
    # a user sample (EvalConfig.user_sample) is sharded the same way: its users, once each
    assert got["sampled"] == evaluate(scorer, split, "test", EvalConfig(batch_size=16, user_sample=57))
    assert {r["n_users"] for r in got["sampled"] if r["group"] == "overall"} == {57}


def _fail_on_rank_one(team):
    from pipeline.errors import InputError

    if team.rank == 1:
        raise InputError("rank one refuses")
    torch.distributed.barrier()  # would wait forever for rank 1 without the launcher
    return "unreachable"


def test_a_rank_that_raises_stops_the_others_with_its_own_error():
    from pipeline.distributed import launch
    from pipeline.errors import InputError

    start = time.monotonic()
    with pytest.raises(InputError, match="rank one refuses"):
        launch(_fail_on_rank_one, (), 2, torch.device("cpu"), threads=1)
    assert time.monotonic() - start < 120
    assert not _ranks()


class Pause:
    """on_epoch_end of the run that gets killed: rank 0 sleeps after each checkpoint, so
    the kill lands between the first saved epoch and the end (touches no random stream)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, epoch: int, loss: float) -> None:
        time.sleep(self.seconds)


def _ranks() -> list[psutil.Process]:
    """This process's spawned training ranks, oldest first."""
    kids = [p for p in psutil.Process().children() if "spawn_main" in " ".join(p.cmdline())]
    return sorted(kids, key=lambda p: p.pid)


def test_killed_rank_stops_the_run_and_resume_matches(synthetic_split, two_process_run,
                                                      tmp_path):
    from pipeline import checkpoint
    from pipeline.distributed import RankFailedError
    from pipeline.train import train_srs

    cfg, cut = _cfg(nproc=2), tmp_path / "cut"
    last = cut / "last.pt"
    killed: list[int] = []

    def kill_rank_one_after_two_epochs() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if last.is_file() and checkpoint.load(last)["state"]["epoch"] >= 2:
                victim = _ranks()[-1]
                killed.append(victim.pid)
                victim.send_signal(signal.SIGKILL)
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_rank_one_after_two_epochs, daemon=True)
    killer.start()
    start = time.monotonic()
    with pytest.raises(RankFailedError, match=r"training rank \d of 2 was killed by SIGKILL"):
        train_srs(synthetic_split, cfg, cut, progress=False, on_epoch_end=Pause(1.0))
    killer.join()
    print(f"killed pid {killed}; the launcher stopped the run in {time.monotonic() - start:.1f} s")
    assert killed and not _ranks()  # the surviving rank was stopped too
    killed_at = checkpoint.load(last)["state"]["epoch"]
    assert 2 <= killed_at < 4 and not (cut / "result.json").exists()

    resumed = train_srs(synthetic_split, cfg, cut, resume=True, progress=False)
    reference, _ = two_process_run
    assert resumed.epochs_run == reference.epochs_run == 4
    _assert_same_metrics(resumed, reference)
    for split in ("valid_rows", "test_rows"):  # measured: bit for bit
        assert getattr(resumed, split) == getattr(reference, split)
