"""ExportError and the parity tolerance every export is checked against (shared by the writers)."""
from __future__ import annotations

PARITY_TOL = 1e-4  # max |export - PyTorch| accepted after export


class ExportError(ValueError):
    """An export that cannot be done (missing optional package, bad output path); the message says what to do."""
