"""wait_for: poll a condition until it holds or a timeout passes (shared by the tests that wait on threads)."""
from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(cond: Callable[[], object], timeout: float = 120.0, every: float = 0.05) -> bool:
    """True as soon as ``cond()`` is truthy; after ``timeout`` seconds, one last check decides."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(every)
    return bool(cond())
