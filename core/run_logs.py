"""Fast, incremental readers of a run's append-only logs, and downsampling for drawing.

``MetricsHistory`` keeps a byte offset into ``metrics.jsonl`` and parses only the lines
appended since the last ``refresh()``; columns are numpy arrays (NaN where a row lacks the
key or the value was non-finite). A torn last line is left for the next refresh; damaged
lines in the middle are skipped and counted. If the file is replaced or shrinks (a resume
truncates it), the reader starts again from the top.

``downsample`` reduces a series to about ``max_points`` while keeping every bucket's first,
last, minimum and maximum point, so spikes survive and a million rows draw in milliseconds.

No Streamlit here: the studio holds these objects in ``st.cache_resource``; a notebook can use
them directly.
"""
from __future__ import annotations

import json
import math
import os
import threading
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

METRICS = "metrics.jsonl"
EVENTS = "events.jsonl"
# A first read with more new lines than this parses every k-th line (plus the newest TAIL_ROWS
# in full) so a run with 10^6 logged steps opens in about a second instead of ~15 s. Charts draw
# ~2000 points anyway; what a stride can hide is a spike that lasted one log interval.
MAX_ROWS_PER_READ = 100_000
TAIL_ROWS = 5_000


class _Column:
    """A float64 column built from appended chunks; concatenated lazily and cached."""

    __slots__ = ("chunks", "_cache")

    def __init__(self) -> None:
        self.chunks: list[np.ndarray] = []
        self._cache: np.ndarray | None = None

    def append(self, arr: np.ndarray) -> None:
        self.chunks.append(arr)
        self._cache = None

    def array(self) -> np.ndarray:
        if self._cache is None:
            if not self.chunks:
                self._cache = np.empty(0, dtype=np.float64)
            else:
                self._cache = np.concatenate(self.chunks) if len(self.chunks) > 1 else self.chunks[0]
                self.chunks = [self._cache]
        return self._cache


def _parse_lines(lines: list[bytes]) -> tuple[list[dict[str, Any]], int]:
    """Parse complete JSONL lines; return (records, number of damaged lines skipped)."""
    lines = [ln for ln in (raw.strip() for raw in lines) if ln]
    if not lines:
        return [], 0
    try:  # one C call for the whole batch is several times faster than one json.loads per line
        recs = json.loads(b"[" + b",".join(lines) + b"]")
        if all(isinstance(r, dict) for r in recs):
            return recs, 0
    except (ValueError, RecursionError, MemoryError):  # one damaged or hostile (deep) line: go line by line
        pass
    out, bad = [], 0
    for ln in lines:
        try:
            r = json.loads(ln)
        except (ValueError, RecursionError, MemoryError):
            bad += 1
            continue
        if isinstance(r, dict):
            out.append(r)
        else:
            bad += 1
    return out, bad


class _IncrementalJsonl:
    """Shared offset/inode bookkeeping for an append-only JSONL file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.RLock()
        self._offset = 0
        self._ident: tuple[int, int] | None = None
        self.damaged_lines = 0
        self.generation = 0  # bumps whenever the file was replaced and re-read from the top
        self.stride = 1  # >1 when a huge history was read with a stride (see MAX_ROWS_PER_READ)
        self.stride_allowed = False  # metrics only: events must all be seen

    def _reset(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _consume(self, recs: list[dict[str, Any]]) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def refresh(self) -> int:
        """Read lines appended since the last call; return how many records were added."""
        with self._lock:
            try:
                st = os.stat(self.path)
            except OSError:
                if self._ident is not None:
                    self._reset_all()
                return 0
            ident = (st.st_dev, st.st_ino)
            if self._ident is not None and (ident != self._ident or st.st_size < self._offset):
                self._reset_all()
            self._ident = ident
            if st.st_size == self._offset:
                return 0
            try:
                with open(self.path, "rb") as f:
                    f.seek(self._offset)
                    data = f.read(st.st_size - self._offset)
            except OSError:
                return 0
            end = data.rfind(b"\n")
            if end < 0:
                return 0  # only a torn (still being written) line so far
            lines = data[:end].split(b"\n")
            if len(lines) > MAX_ROWS_PER_READ and self.stride_allowed:
                body, tail = lines[:-TAIL_ROWS], lines[-TAIL_ROWS:]
                k = -(-len(body) // (MAX_ROWS_PER_READ - TAIL_ROWS))
                lines = body[::k] + tail
                self.stride = max(self.stride, k)
            recs, bad = _parse_lines(lines)
            self.damaged_lines += bad
            self._offset += end + 1
            if recs:
                self._consume(recs)
            return len(recs)

    def _reset_all(self) -> None:
        self.stride = 1
        self._offset = 0
        self._ident = None
        self.damaged_lines = 0
        self.generation += 1
        self._reset()

    @property
    def torn_tail(self) -> bool:
        """True when the file ends in an incomplete line (a writer mid-append, or a crash)."""
        try:
            return os.path.getsize(self.path) > self._offset
        except OSError:
            return False


class MetricsHistory(_IncrementalJsonl):
    """Columns of ``metrics.jsonl`` as numpy arrays, updated incrementally."""

    def __init__(self, path: str | Path):
        super().__init__(path)
        self.stride_allowed = True
        self._reset()

    def _reset(self) -> None:
        self._n = 0
        self._cols: dict[str, _Column] = {}

    def __len__(self) -> int:
        return self._n

    def _consume(self, recs: list[dict[str, Any]]) -> None:
        n = len(recs)
        keys: dict[str, None] = {}
        for r in recs:
            for k, v in r.items():
                if k not in keys and (v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))):
                    keys[k] = None
        for k in keys:
            arr = np.fromiter(
                (_num(r.get(k)) for r in recs), dtype=np.float64, count=n)
            col = self._cols.get(k)
            if col is None:
                col = self._cols[k] = _Column()
                if self._n:
                    col.append(np.full(self._n, np.nan))
            col.append(arr)
        for k, col in self._cols.items():
            if k not in keys:
                col.append(np.full(n, np.nan))
        self._n += n

    def columns(self) -> list[str]:
        """Every numeric column except bookkeeping ones (step, time), in first-seen order."""
        with self._lock:
            return [k for k, c in self._cols.items() if k not in ("step", "time")
                    and np.isfinite(c.array()).any()]

    def column(self, name: str) -> np.ndarray:
        with self._lock:
            c = self._cols.get(name)
            return c.array() if c is not None else np.full(self._n, np.nan)

    def series(self, name: str, x: str = "step") -> tuple[np.ndarray, np.ndarray]:
        """(x, y) for rows where ``name`` has a finite value."""
        with self._lock:
            y = self.column(name)
            xs = self.column(x) if x in self._cols else np.arange(self._n, dtype=np.float64)
            m = np.isfinite(y) & np.isfinite(xs)
            return xs[m], y[m]

    def last(self, name: str) -> float | None:
        """The most recent finite value of ``name``, or None."""
        with self._lock:
            y = self.column(name)
            idx = np.flatnonzero(np.isfinite(y))
            return float(y[idx[-1]]) if idx.size else None


def _num(v: Any) -> float:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    return math.nan


class EventLog(_IncrementalJsonl):
    """``events.jsonl`` read incrementally; keeps at most ``max_events`` recent events plus
    the latest finding per kind and every rollback (so neither is lost to the cap)."""

    def __init__(self, path: str | Path, max_events: int = 5000):
        super().__init__(path)
        self.max_events = max_events
        self._reset()

    def _reset(self) -> None:
        self._events: list[dict[str, Any]] = []
        self._findings: dict[str, dict[str, Any]] = {}
        self._rollbacks: list[dict[str, Any]] = []

    def _consume(self, recs: list[dict[str, Any]]) -> None:
        for r in recs:
            if r.get("type") == "finding":
                self._findings[str(r.get("kind", "unknown"))] = r
            elif r.get("type") == "rollback":  # on_diverge=rollback: at most one per session
                self._rollbacks.append(r)
        self._events.extend(recs)
        if len(self._events) > self.max_events:
            del self._events[: len(self._events) - self.max_events]

    def events(self, types: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self._events if types is None or e.get("type") in types]

    def findings(self) -> list[dict[str, Any]]:
        """Latest record per finding kind (status started or cleared), most severe first."""
        with self._lock:
            out = list(self._findings.values())
        return sorted(out, key=lambda f: (-_SEVERITY.get(f.get("severity"), 0), -(f.get("time") or 0)))

    def rollbacks(self) -> list[dict[str, Any]]:
        """Every ``rollback`` event of the run, oldest first (kept apart from the capped list)."""
        with self._lock:
            return list(self._rollbacks)

    def active_findings(self) -> list[dict[str, Any]]:
        return [f for f in self.findings() if f.get("status", "started") != "cleared"]

    def last_error(self) -> dict[str, Any] | None:
        with self._lock:
            for e in reversed(self._events):
                if e.get("type") in ("error", "diverged"):
                    return e
        return None


_SEVERITY = {"info": 1, "warning": 2, "critical": 3}


class HistoryCache:
    """A small LRU of readers keyed by run folder, shared by all browser sessions."""

    def __init__(self, max_runs: int = 64):
        self.max_runs = max_runs
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[str, str], Any] = OrderedDict()

    def _get(self, kind: str, run_dir: str | Path, factory) -> Any:
        key = (kind, str(Path(run_dir).resolve()))
        with self._lock:
            obj = self._items.get(key)
            if obj is None:
                obj = self._items[key] = factory()
            self._items.move_to_end(key)
            while len(self._items) > self.max_runs * 2:
                self._items.popitem(last=False)
        obj.refresh()
        return obj

    def metrics(self, run_dir: str | Path) -> MetricsHistory:
        return self._get("m", run_dir, lambda: MetricsHistory(Path(run_dir) / METRICS))

    def events(self, run_dir: str | Path) -> EventLog:
        return self._get("e", run_dir, lambda: EventLog(Path(run_dir) / EVENTS))

    def forget(self, run_dir: str | Path) -> None:
        p = str(Path(run_dir).resolve())
        with self._lock:
            for k in [k for k in self._items if k[1] == p]:
                del self._items[k]


# ------------------------------------------------------------------ downsampling
def downsample(x: np.ndarray, y: np.ndarray, max_points: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Min/max-preserving reduction to at most ~``max_points`` points.

    The series is cut into ``max_points // 4`` equal buckets and each keeps its first, last,
    minimum and maximum point (the "M4" scheme), so the drawn line has the same envelope
    (every spike and the global extremes) as the full series. NaNs are dropped first.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    m = np.isfinite(x) & np.isfinite(y)
    if not m.all():
        x, y = x[m], y[m]
    n = y.size
    if n <= max_points:
        return x, y
    nb = max(1, max_points // 4)
    k = -(-n // nb)  # bucket size (ceil)
    nb = -(-n // k)
    pad = nb * k - n
    yp = np.concatenate([y, np.full(pad, np.nan)]) if pad else y
    grid = yp.reshape(nb, k)
    base = np.arange(nb) * k
    imin = base + np.argmin(np.where(np.isnan(grid), np.inf, grid), axis=1)
    imax = base + np.argmax(np.where(np.isnan(grid), -np.inf, grid), axis=1)
    ifirst = base
    ilast = np.minimum(base + k - 1, n - 1)
    idx = np.unique(np.concatenate([ifirst, ilast, imin, imax]))
    idx = idx[idx < n]
    return x[idx], y[idx]


def smooth(y: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average (same length) used for an optional smoothed overlay."""
    y = np.asarray(y, dtype=np.float64)
    if window <= 1 or y.size == 0:
        return y
    c = np.cumsum(np.insert(y, 0, 0.0))
    out = np.empty_like(y)
    w = min(window, y.size)
    out[w - 1:] = (c[w:] - c[:-w]) / w
    out[: w - 1] = c[1:w] / np.arange(1, w)
    return out


# ------------------------------------------------------------------ run health
def checkpoint_problems(run_dir: str | Path) -> list[str]:
    """Cheap check of every checkpoint file without unpickling: torch's format is a zip
    archive, so an empty, truncated or overwritten file fails ``zipfile.is_zipfile``."""
    out = []
    ck = Path(run_dir) / "checkpoints"
    try:
        files = sorted(p for p in ck.iterdir() if p.suffix == ".pt")
    except OSError:
        return out
    for p in files:
        try:
            ok = p.stat().st_size > 0 and zipfile.is_zipfile(p)
        except OSError:
            ok = False
        if not ok:
            out.append(f"checkpoints/{p.name} in {Path(run_dir).name} is damaged (not a readable checkpoint)")
    return out


def metrics_problems(h: MetricsHistory, run_name: str, active: bool = False) -> list[str]:
    """Readable notes about a damaged metrics file (a torn tail is normal while a run writes)."""
    out = []
    if h.damaged_lines:
        out.append(f"{METRICS} in {run_name} has {h.damaged_lines} damaged line(s); they were skipped")
    if not active and h.torn_tail:
        out.append(f"{METRICS} in {run_name} ends with an incomplete line (the writer was cut off); it was ignored")
    return out
