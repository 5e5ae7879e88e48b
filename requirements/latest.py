"""`make test-latest`: would the newest versions pyproject.toml allows still pass? Advisory.

Builds a throwaway venv with the newest allowed versions (torch stays at the lock's pin:
moving it is a separate, heavy decision), runs the fast tests (`-m "not slow"`), and when
some fail, takes each upgraded direct dependency back to its locked version, one at a time,
to name the upgrade that broke them. Never part of `make test` or CI: it needs the network
and its answer changes with every release. Prints the upgrades, the failures and the
culprits; exits 1 when something broke, so moving the lock is a decision, not an accident.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from sync import canonical, lock_pins

ROOT = Path(__file__).resolve().parent.parent


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, text=True, **kw)


def direct_dependencies() -> list[str]:
    text = (ROOT / "pyproject.toml").read_text()
    block = text.split("dependencies = [", 1)[1].split("]", 1)[0]
    names = re.findall(r'^\s*"([A-Za-z0-9_.-]+)', block, re.M)
    return [canonical(n) for n in names] + ["faiss-cpu"]


def freeze(python: Path) -> dict[str, str]:
    out = run([str(python), "-m", "pip", "freeze", "--exclude-editable"],
              capture_output=True, check=True).stdout
    return {canonical(n): v for n, _, v in (line.partition("==") for line in out.splitlines()) if v}


def failing_tests(python: Path, selection: list[str], marker: str) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "junit.xml"
        run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", marker,
             f"--junitxml={report}", *selection])
        if not report.is_file():
            return ["(pytest did not run: see its output above)"]
        failed = []
        for case in ET.parse(report).iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                path = case.get("classname", "").replace(".", "/")
                failed.append(f"{path}.py::{case.get('name')}")
        return failed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--venv", type=Path, default=ROOT / ".cache" / "latest-venv")
    ap.add_argument("--lock", type=Path, default=ROOT / "requirements" / "cpu.lock")
    ap.add_argument("--marker", default="not slow", help="pytest -m expression")
    args = ap.parse_args()
    lock = lock_pins(args.lock)
    torch = lock["torch"]
    shutil.rmtree(args.venv, ignore_errors=True)
    run([sys.executable, "-m", "venv", str(args.venv)], check=True)
    python = args.venv / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "-q", "--progress-bar", "off"]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as pin:
        pin.write(f"torch=={torch}\n")
    print(f"test-latest: newest allowed versions in {args.venv} (torch held at {torch})")
    run([*pip, f"torch=={torch}"], check=True)
    run([*pip, "-c", pin.name, "-e", ".[cpu,dev]"], check=True)
    latest = freeze(python)
    upgrades = {n: (lock[n], v) for n, v in latest.items() if n in lock and lock[n] != v}
    new = sorted(set(latest) - set(lock))
    for name, (old, v) in sorted(upgrades.items()):
        print(f"  moved: {name} {old} -> {v}")
    for name in new:
        print(f"  new:   {name} {latest[name]}")
    if not upgrades and not new:
        print("test-latest: the lock is already the newest allowed; nothing to test")
        return 0
    failed = failing_tests(python, [], args.marker)
    if not failed:
        print(f"test-latest: PASS with {len(upgrades)} upgrades: `make lock` may move them")
        return 0
    print(f"test-latest: {len(failed)} tests fail on the newest versions:")
    for t in failed:
        print(f"  {t}")
    culprits = []
    for name in [n for n in direct_dependencies() if n in upgrades]:
        old, v = upgrades[name]
        run([*pip, "--no-deps", f"{name}=={old}"], check=True)
        still = set(failing_tests(python, failed, args.marker))
        fixed = [t for t in failed if t not in still]
        run([*pip, "--no-deps", f"{name}=={v}"], check=True)
        if fixed:
            culprits.append(name)
            print(f"test-latest: upgrading {name} {old} -> {v} breaks {len(fixed)}: "
                  + ", ".join(fixed))
    if not culprits:
        print("test-latest: no single upgrade explains the failures (a combination, or a "
              "transitive dependency: compare the 'moved' list above)")
    print("test-latest: keep the lock; bound the culprit in pyproject.toml with a comment, "
          "or fix the code, then `make lock`")
    return 1


if __name__ == "__main__":
    sys.exit(main())
