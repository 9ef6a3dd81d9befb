"""CPU accounting for benchmarks (Linux /proc; no psutil): our process tree's CPU seconds and the
whole machine's busy time, so that a measurement taken on a contended machine says so."""
from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
# Child processes that are not ours to count (e.g. a benchmark's deliberately competing load).
EXCLUDE: set[int] = set()


def _children_of(root: int) -> list[int]:
    """Live descendants of ``root`` (e.g. DataLoader workers)."""
    parents: dict[int, list[int]] = {}
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                s = f.read()
            ppid = int(s[s.rindex(b")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        kids = [k for k in parents.get(todo.pop(), []) if k not in EXCLUDE]
        out.extend(kids)
        todo.extend(kids)
    return out


def _proc_cpu(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            s = f.read()
        rest = s[s.rindex(b")") + 2:].split()
        return (int(rest[11]) + int(rest[12])) / _TICK  # utime + stime
    except (OSError, ValueError, IndexError):
        return 0.0


def tree_cpu_seconds() -> float:
    """CPU seconds of this process + its live descendants + its already-reaped children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    dead = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = me.ru_utime + me.ru_stime + dead.ru_utime + dead.ru_stime
    if os.path.isdir("/proc"):
        total += sum(_proc_cpu(p) for p in _children_of(os.getpid()))
    return total


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0, 0.0
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return (sum(v[:8]) - idle) / _TICK, sum(v[:8]) / _TICK


@dataclass
class Span:
    wall_s: float = 0.0
    cores: float = 0.0           # our process tree's CPU seconds / wall seconds
    machine_cores: float = 0.0   # the whole machine's busy CPU seconds / wall seconds (ours included)

    @property
    def others(self) -> float:
        """Cores busy with other processes meanwhile."""
        return max(0.0, self.machine_cores - self.cores)


class Meter:
    """``with Meter() as m: ...`` then m.span: wall time, cores we used, cores the machine used."""

    def __enter__(self) -> Meter:
        self._c0, self._m0, self._t0 = tree_cpu_seconds(), machine_busy()[0], time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        wall = max(time.perf_counter() - self._t0, 1e-9)
        self.span = Span(wall, (tree_cpu_seconds() - self._c0) / wall, (machine_busy()[0] - self._m0) / wall)


def load_average() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:
        return (float("nan"),) * 3
