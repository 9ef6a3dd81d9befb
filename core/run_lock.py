"""Who holds a run folder, across machines: the lock record in .train.lock judged by the holder's heartbeat."""
from __future__ import annotations

import math
import os
import time
from typing import Any


def _when(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def heartbeat(record: dict[str, Any], status: dict[str, Any]) -> float | None:
    """The holder's newest sign of life: when it took the lock, or status.json's ``updated`` when that
    status was written by the same process (host and pid). None when neither is known."""
    times = [_when(record.get("started"))]
    if record.get("host") and status.get("host") == record.get("host") and status.get("pid") == record.get("pid"):
        times.append(_when(status.get("updated")))
    known = [t for t in times if t is not None]
    return max(known) if known else None


def pid_alive(pid: int) -> bool:
    """A local process with this id exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists but belongs to someone else
    try:  # a killed process whose parent never reaped it is a zombie: dead for our purposes
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def live_holder(record: dict[str, Any], status: dict[str, Any], here: str, stale_after: float,
                now: float | None = None) -> str | None:
    """'pid N on HOST (last heartbeat S s ago)' when ``record`` names a holder that is still alive, else None.

    Why the heartbeat and not the pid for another machine: its pid means nothing here (a local process
    with that number proves nothing, a missing one proves nothing either), and its flock may not reach
    us. A holder whose heartbeat is older than ``stale_after`` has died (or lost the folder). On this
    machine the pid is asked too, so a crashed holder is free at once."""
    if not record:
        return None
    beat = heartbeat(record, status)
    age = (now or time.time()) - beat if beat is not None else None
    if age is None or age > stale_after:  # a record with no time is from before records had one: stale
        return None
    pid, host = record.get("pid"), record.get("host", "")
    if host == here and isinstance(pid, int) and pid != os.getpid() and not pid_alive(pid):
        return None
    where = f" on {host}" if host and host != here else ""
    return f"pid {pid}{where} (last heartbeat {max(age, 0):.0f} s ago)"


def takeover_note(record: dict[str, Any], status: dict[str, Any], stale_after: float) -> str:
    """The event text when a stale lock of another machine is taken over."""
    beat = heartbeat(record, status)
    ago = f"{(time.time() - beat) / 60:.1f} min ago" if beat is not None else "at an unknown time"
    return (f"Took over the training lock of pid {record.get('pid')} on {record.get('host')}: its last heartbeat "
            f"was {ago} (more than {stale_after / 60:g} min), so that training is taken to have ended without "
            "releasing it (a crash, or the machine lost the folder). If it is in fact still running, stop one of "
            "the two: both now write this folder.")
