"""Which project files does one CLI command run code in? Prints them in first-call order.

    .venv/bin/python bench/call_files.py train --dataset movielens-100k --backbone sasrec \
        --seeds 0 --set epochs=1

Runs `llm4srs <args>` in this process under `sys.setprofile` and records every call of a
function defined in the project's source folders, leaving out code that runs while a
module is being imported (registrations, decorators). A file is "entered" when a call
moves into it from another file; the count of top-level entries (calls into it straight
from the CLI or a flow) shows how often the wiring reaches into it, and the same function
called twice from the top shows work done twice (e.g. a dataset prepared by the CLI and then
again by the flow, or a config loaded by both). Last line: one JSON object. Prints, never asserts.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pipeline", "models", "embeddings_store", "flows", "llm4srs")
TOP = ("llm4srs/cli.py", "flows/")


def project_file(filename: str) -> str | None:
    try:
        rel = Path(filename).resolve().relative_to(ROOT)
    except ValueError:
        return None
    return str(rel) if rel.parts and rel.parts[0] in SOURCES else None


def main() -> None:
    order: list[str] = []
    top_entries: dict[str, int] = {}
    top_calls: dict[str, int] = {}  # file::function called from the CLI/flows -> times
    importing = threading.local()

    def profile(frame, event, arg):
        if event != "call":
            if event == "return" and frame.f_code.co_name == "<module>":
                importing.depth = getattr(importing, "depth", 1) - 1
            return
        if frame.f_code.co_name == "<module>":
            importing.depth = getattr(importing, "depth", 0) + 1
            return
        if getattr(importing, "depth", 0) > 0:
            return
        here = project_file(frame.f_code.co_filename)
        if here is None:
            return
        if here not in order:
            order.append(here)
        caller = frame.f_back
        source = project_file(caller.f_code.co_filename) if caller is not None else None
        if source != here and source is not None and source.startswith(TOP) \
                and not here.startswith(TOP):
            top_entries[here] = top_entries.get(here, 0) + 1
            fn = f"{here}::{frame.f_code.co_name}"
            if not frame.f_code.co_name.startswith("__"):
                top_calls[fn] = top_calls.get(fn, 0) + 1

    sys.argv = ["llm4srs", *sys.argv[1:]]
    from llm4srs.cli import main as cli_main

    sys.setprofile(profile)
    threading.setprofile(profile)
    try:
        cli_main()
    except SystemExit:
        pass
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    for i, name in enumerate(order, 1):
        twice = f"  (entered {top_entries[name]}x from the CLI/flows)" if top_entries.get(name, 0) > 1 else ""
        print(f"{i:3d} {name}{twice}", file=sys.stderr)
    repeated = {k: v for k, v in top_calls.items() if v > 1}
    print(f"same function called again from the CLI/flows: {repeated or 'none'}", file=sys.stderr)
    print(json.dumps({"files": len(order), "order": order,
                      "entered_more_than_once_from_top": {k: v for k, v in top_entries.items() if v > 1},
                      "same_function_again_from_top": repeated}))


if __name__ == "__main__":
    main()
