"""DataError: the one user-facing error type of core.data."""
from __future__ import annotations


class DataError(ValueError):
    """A data problem a person can fix; the message names the file or folder involved."""
