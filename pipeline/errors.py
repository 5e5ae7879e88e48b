"""User-facing error type: one line naming the file, column or option at fault."""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input (a file, a column, an option). The CLI prints it as one line and exits 2."""


class DivergedError(InputError):
    """Training produced a non-finite loss or non-finite scores (e.g. a learning rate far too
    high). Never evaluated into metrics: a NaN score would rank first and look perfect."""
