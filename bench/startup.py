"""How fast the CLI answers: wall seconds of light commands, and of a flow command until its
first line of output (its own temporary Prefect server vs a running one).

    .venv/bin/python bench/startup.py [--repeat 3] [--run movielens-100k/<run>] [--api URL]

`--run`: also time `recommend` on that run (`--history 50,172,181`). `--api`: also time
`train` against a running server (`make server`). Prints figures and a JSON line; never
asserts. Say what else the machine was doing when you quote them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = str(Path(sys.executable).with_name("llm4srs"))


def wall(args: list[str], env: dict | None = None) -> float:
    start = time.perf_counter()
    subprocess.run([CLI, *args], capture_output=True, env=env)
    return time.perf_counter() - start


def first_line(args: list[str], env: dict) -> float:
    """Seconds until the command writes anything (stdout or stderr); then stop it."""
    start = time.perf_counter()
    proc = subprocess.Popen([CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=env)
    assert proc.stdout is not None
    proc.stdout.read(1)  # a progress bar rewrites its line with \r: the first byte counts
    took = time.perf_counter() - start
    proc.terminate()
    proc.wait()
    return took


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--run", default=None)
    p.add_argument("--api", default=None)
    a = p.parse_args()
    light = {"--help": ["--help"], "store --help": ["store", "--help"],
             "store ls": ["store", "ls"], "bad option": ["store", "ls", "--nope"]}
    if a.run:
        light["recommend"] = ["recommend", a.run, "--history", "50,172,181"]
    out = {k: statistics.median(wall(v) for _ in range(a.repeat)) for k, v in light.items()}
    with tempfile.TemporaryDirectory() as tmp:
        train = ["train", "--dataset", "synthetic", "--backbone", "sasrec", "--set", "epochs=1",
                 "--data-dir", f"{tmp}/data", "--runs-dir", f"{tmp}/runs"]
        env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        out["train, first line (own server)"] = first_line(train, env)
        if a.api:
            out["train, first line (running server)"] = first_line(
                train, {**env, "PREFECT_API_URL": a.api})
    for k, v in out.items():
        print(f"{k:>36}: {v:6.2f} s")
    print(json.dumps({k: round(v, 3) for k, v in out.items()}))


if __name__ == "__main__":
    main()
