"""The one error type of the LLM layer; the CLI maps it to a one-line message."""

from __future__ import annotations


class ModelLoadError(ValueError):
    """A model that cannot be found, read or loaded: one line naming the path or id at fault.

    `models/` must not import `pipeline`, so this is not `pipeline.errors.InputError`; the CLI
    treats both the same way (print the line, exit 2).
    """
