"""The one exception type the store raises for bad input or a damaged store.

It subclasses ``ValueError`` so callers that already catch ``ValueError`` keep working,
and so the CLI can turn exactly this type (and nothing else) into a one-line message and
exit code 2, while real bugs still show a traceback.
"""

from __future__ import annotations


class StoreError(ValueError):
    """Bad input or a damaged/missing store entry; the message is one line naming the culprit."""

    def __init__(self, message: str) -> None:
        # One line, always: the CLI prints it verbatim after "error: ".
        super().__init__(" ".join(str(message).split()))
