"""What a user sees when a command breaks on a bug (not on their input).

A flow command prints progress bars, Prefect's run logs and, on a bug, several tracebacks;
the cause is easy to lose. `CommandLog` copies everything the command writes to stdout and
stderr into a temporary file while it runs. On an unexpected failure `main` keeps that file
under `runs/logs/` and prints one last line naming the failed task and the file; on
success or a user error (one `error:` line) the file is removed, so nothing is left behind.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TextIO

LOG_DIR_ENV = "LLM4SRS_LOG_DIR"
DEFAULT_LOG_DIR = Path("runs") / "logs"


class _Tee:
    """A text stream that writes to the original stream and to the log file."""

    def __init__(self, stream: TextIO, log: TextIO) -> None:
        self._stream, self._log = stream, log

    def write(self, text: str) -> int:
        try:
            self._log.write(text)
        except (OSError, ValueError):  # a full disk must not break the command's own output
            pass
        return self._stream.write(text)

    def flush(self) -> None:
        self._stream.flush()
        try:
            self._log.flush()
        except (OSError, ValueError):
            pass

    def __getattr__(self, name: str):  # isatty, fileno, encoding, … of the real stream
        return getattr(self._stream, name)


class _FailedTask(logging.Filter):
    """Remembers the last task run that logged an error (Prefect's task-run logger)."""

    def __init__(self) -> None:
        super().__init__()
        self.name: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            self.name = getattr(record, "task_run_name", None) or self.name
        return True


class CommandLog:
    """Tee stdout/stderr to a temp file for the command's lifetime (a context manager)."""

    def __init__(self, command: str) -> None:
        self.command = command or "llm4srs"
        self.failed_task = _FailedTask()
        self._file: TextIO | None = None
        self._saved: tuple[TextIO, TextIO] | None = None

    def __enter__(self) -> CommandLog:
        fd, path = tempfile.mkstemp(prefix=f"llm4srs-{self.command}-", suffix=".log")
        self._file = os.fdopen(fd, "w", encoding="utf-8", errors="replace")
        self._path = Path(path)
        self._saved = (sys.stdout, sys.stderr)
        sys.stdout = _Tee(sys.stdout, self._file)
        sys.stderr = _Tee(sys.stderr, self._file)
        logging.getLogger("prefect.task_runs").addFilter(self.failed_task)
        return self

    def __exit__(self, *exc) -> None:
        self._restore()
        self._path.unlink(missing_ok=True)  # kept only through keep()

    def _restore(self) -> None:
        if self._saved is not None:
            sys.stdout, sys.stderr = self._saved
            self._saved = None
        logging.getLogger("prefect.task_runs").removeFilter(self.failed_task)
        if self._file is not None:
            self._file.close()
            self._file = None

    def keep(self) -> Path | None:
        """Move the log under runs/logs/ (or $LLM4SRS_LOG_DIR); None if that fails too."""
        if self._file is not None:
            self._file.flush()
        folder = Path(os.environ.get(LOG_DIR_ENV) or DEFAULT_LOG_DIR)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        target = folder / f"{stamp}-{self.command}-{os.getpid()}.log"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self._path, target)
        except OSError:
            return None
        return target


def summary(err: BaseException, log: CommandLog) -> str:
    """The last line after an unexpected failure's traceback."""
    first = (str(err).strip().splitlines() or [""])[0][:300]
    where = f"task {log.failed_task.name!r} failed" if log.failed_task.name else \
        f"`llm4srs {log.command}` failed outside any task"
    kept = log.keep()
    tail = f"full log: {kept}" if kept else f"the log could not be kept ({log._path} was the temp file)"
    return f"error: {where} with {type(err).__name__}: {first} (a bug, not your input); {tail}"
