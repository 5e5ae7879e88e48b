"""Make (or check) the running venv hold exactly a lock's pins: `python sync.py LOCK [--check]`.

`pip install -r LOCK` adds and replaces but never removes, so a venv that once held
something else keeps it. This removes what the lock does not name (after the install), then
compares `pip freeze --exclude-editable` with the lock, name by name. Standard library only:
it runs before anything else is trusted. Exit 1 on any difference, naming each.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

# pip hides these from `pip freeze`; build.lock pins setuptools.
PIP_OWN = {"pip", "setuptools", "wheel", "distribute"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", line)
        if m:
            pins[canonical(m.group(1))] = m.group(2)
    return pins


def frozen() -> dict[str, str]:
    out = subprocess.run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
                         check=True, capture_output=True, text=True).stdout
    pins = {}
    for line in out.splitlines():
        name, sep, version = line.partition("==")
        if sep:
            pins[canonical(name)] = version.strip()
        elif line.strip() and not line.startswith("#"):
            pins[canonical(line.split(" @ ")[0])] = line  # a direct reference: never locked
    return pins


def differences(lock: dict[str, str], have: dict[str, str]) -> list[str]:
    out = []
    for name in sorted(set(lock) | set(have)):
        if name in PIP_OWN:
            continue
        if name not in have:
            out.append(f"{name}: locked {lock[name]}, not installed")
        elif name not in lock:
            out.append(f"{name}: installed {have[name]}, not in the lock")
        elif lock[name] != have[name]:
            out.append(f"{name}: locked {lock[name]}, installed {have[name]}")
    return out


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 1:
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    lock_path = Path(args[0])
    lock = lock_pins(lock_path)
    if "--check" not in sys.argv:
        extra = sorted(n for n in frozen() if n not in lock and n not in PIP_OWN)
        if extra:
            print(f"removing {len(extra)} packages the lock does not name: {', '.join(extra)}")
            subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", "-q", *extra],
                           check=True)
    diffs = differences(lock, frozen())
    for d in diffs:
        print(f"error: venv differs from {lock_path}: {d}", file=sys.stderr)
    if diffs:
        print("run `make setup` to install exactly the lock", file=sys.stderr)
        return 1
    print(f"venv matches {lock_path} ({len(lock)} pins)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
