"""User-facing error type: one line naming the file, column or option at fault."""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input (a file, a column, an option). The CLI prints it as one line and exits 2."""
