"""The run folder contract: RunStore writes a run, RunInfo/list_runs read any run tolerantly."""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .fsutil import FileLock, JsonlAppender, UnsafePathError, atomic_write_json, metrics_row, read_json, read_jsonl
from .run_fields import META_KINDS, STATUS_KINDS, check_config, check_fields
from .run_lock import live_holder, takeover_note
from .run_lock import pid_alive as _pid_alive

STATES = ("starting", "running", "paused", "stopped", "finished", "failed", "diverged")
ACTIVE_STATES = ("starting", "running", "paused")
# Five digits, or more once 99999 is passed (the 100,000th run must stay visible and numbered).
_RUN_DIR_RE = re.compile(r"^(\d{5,})-(.+)$")
# A run whose status says "running" but has not been updated for this long lost its process.
STALE_AFTER_S = 300.0


HOST = socket.gethostname()


class RunError(ValueError):
    """A run folder problem a user can act on (names the folder or file)."""


@contextmanager
def _no_links():
    """Raise a write refused for a planted link (fsutil.UnsafePathError) as the RunError the CLI and pages show."""
    try:
        yield
    except UnsafePathError as e:
        raise RunError(str(e)) from None


def sanitize_name(name: str) -> str:
    """A folder-safe run name: letters, digits, '-', '_', '.'; never a path."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:60]
    return s or "run"


def resolve_inside(root: str | Path, candidate: str | Path) -> Path:
    """Resolve ``candidate`` (absolute or relative to root) and refuse anything outside ``root``."""
    root_r = Path(root).expanduser().resolve()
    p = Path(candidate).expanduser()
    p = (p if p.is_absolute() else root_r / p).resolve()
    if p != root_r and root_r not in p.parents:
        raise RunError(f"{candidate} is outside the runs folder {root_r}")
    return p


class RunStore:
    """Writer side of one run folder. Only the training process (rank 0) holds one."""

    CONFIG = "config.json"
    METRICS = "metrics.jsonl"
    EVENTS = "events.jsonl"
    STATUS = "status.json"
    CONTROL = "control.json"
    REALS = "reals.png"
    LOCK = ".train.lock"  # flock'd by the one process (thread) training the folder; see lock()

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.samples_dir = self.path / "samples"
        self.checkpoints_dir = self.path / "checkpoints"
        for d in (self.samples_dir, self.checkpoints_dir):
            if d.is_symlink():  # checkpoints/ -> elsewhere would put every checkpoint outside the run folder
                raise RunError(f"{d} is a symbolic link (to {os.readlink(d)}); GAN Studio never writes through "
                               "a link in a run folder. Replace it with a real folder")
            d.mkdir(parents=True, exist_ok=True)
        self._metrics: JsonlAppender | None = None
        self._events: JsonlAppender | None = None
        self._status: dict[str, Any] = {}
        self._lock: FileLock | None = None
        try:
            st = read_json(self.path / self.STATUS)
            self._status = st if isinstance(st, dict) else {}  # a damaged file is rewritten whole
        except ValueError:
            pass

    # ---------------------------------------------------------------- creation
    @classmethod
    def create(cls, runs_root: str | Path, name: str, config: dict[str, Any], meta: dict[str, Any]) -> RunStore:
        """Make ``runs_root/NNNNN-name`` with the next free number; never reuses a folder."""
        root = Path(runs_root).expanduser()
        root.mkdir(parents=True, exist_ok=True)
        name = sanitize_name(name)
        for _ in range(1000):
            nums = [int(m.group(1)) for p in root.iterdir() if (m := _RUN_DIR_RE.match(p.name))]
            path = root / f"{(max(nums) + 1) if nums else 0:05d}-{name}"
            try:
                path.mkdir()  # exclusive: two processes racing for a number get different folders
                break
            except FileExistsError:
                continue
        else:  # pragma: no cover - needs 1000 concurrent creators
            raise RunError(f"could not create a new run folder in {root}")
        store = cls(path)
        atomic_write_json(path / cls.CONFIG, {"config": config, **meta}, inside=path)
        store.write_status(state="starting", step=0, total_steps=config.get("steps"))
        return store

    # ---------------------------------------------------------------- ownership
    def lock(self) -> None:
        """Take the folder for this writer, or raise RunError naming the process that has it.

        Why: the status file cannot tell that another resume is still loading its data (it writes
        "starting" only afterwards), nor that a run whose status went quiet is alive. The lock is
        held for the whole training and released by close() once the status says it ended (a
        close mid-run, as a rollback does to reopen the metrics log, keeps it) or when the
        process dies.
        """
        if self._lock is not None and self._lock.held:
            return
        lock = self._lock or FileLock(self.path / self.LOCK)
        with _no_links():
            got = lock.acquire(record=False)
        if not got:
            pid, host = lock.holder()
            if pid == os.getpid():
                # This process holds it: maybe a trainer that was made but never run and is now
                # garbage; collecting once frees its lock, a live trainer keeps it.
                import gc
                gc.collect()
            if not lock.acquire(record=False):
                pid, host = lock.holder()
                who = f"pid {pid}" + (f" on {host}" if host and host != HOST else "") if pid else "another process"
                raise RunError(f"{self.path.name} is already being trained or resumed by {who}; "
                               "wait for it to finish or stop it first")
        # The flock was free, but on a shared folder another machine's flock is invisible here: its record
        # and heartbeat decide (a fresh one is alive, a stale one crashed and is taken over).
        prev, status = lock.previous, self._status  # read when this store was made, just before
        if (who := live_holder(prev, status, HOST, STALE_AFTER_S)) is not None:
            lock.release(clear=False)
            raise RunError(f"{self.path.name} is already being trained or resumed by {who}; wait for it to "
                           "finish or stop it there. A lock cannot be checked across machines sharing a folder, so "
                           f"it is taken over only once that heartbeat is {STALE_AFTER_S / 60:g} min old")
        lock.write_record()
        self._lock = lock
        if prev.get("host") and prev["host"] != HOST:
            self.log_event("warning", step=int(status.get("step") or 0),
                           message=takeover_note(prev, status, STALE_AFTER_S))

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # ---------------------------------------------------------------- writing
    def log_metrics(self, row: dict[str, Any]) -> None:
        if self._metrics is None:
            with _no_links():
                self._metrics = JsonlAppender(self.path / self.METRICS, inside=self.path)
        self._metrics.write(metrics_row(row))

    def log_event(self, type: str, **fields: Any) -> dict[str, Any]:
        if self._events is None:
            with _no_links():
                self._events = JsonlAppender(self.path / self.EVENTS, inside=self.path)
        ev = {"type": type, "time": time.time(), **fields}
        self._events.write(ev)
        return ev

    def write_status(self, **fields: Any) -> None:
        """Merge ``fields`` into status.json and rewrite it atomically (no fsync: it is advisory)."""
        self._status.update(fields)
        self._status["updated"] = time.time()
        self._status["pid"] = os.getpid()
        self._status["host"] = HOST
        with _no_links():
            atomic_write_json(self.path / self.STATUS, self._status, fsync=False, inside=self.path)

    @property
    def status(self) -> dict[str, Any]:
        return dict(self._status)

    def truncate_metrics_after(self, step: int) -> None:
        """On resume, drop metric rows past the checkpoint's step so no step appears twice."""
        path = self.path / self.METRICS
        rows, end = read_jsonl(path)
        keep = [r for r in rows if not isinstance(r.get("step"), int) or r["step"] <= step]
        try:
            torn = path.stat().st_size != end  # a crash mid-append left a partial last line: drop it too
        except OSError:
            torn = False
        if len(keep) != len(rows) or torn:
            tmp = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in keep)
            from .fsutil import atomic_write_bytes
            with _no_links():
                atomic_write_bytes(path, tmp.encode("utf-8"), inside=self.path)

    def close(self) -> None:
        for f in (self._metrics, self._events):
            if f is not None:
                f.sync()
                f.close()
        self._metrics = self._events = None
        if self._status.get("state") not in ACTIVE_STATES:
            self.unlock()  # the training ended (its final state is written): the folder is free


# -------------------------------------------------------------------- control
CONTROL_STATES = ("running", "paused", "stopped")
CONTROL_MAX_BYTES = 64 * 1024  # a real control file is ~100 bytes; anything this big is not one


def write_control(run_dir: str | Path, **changes: Any) -> dict[str, Any]:
    """Ask a training process to change state: {"state": "running|paused|stopped"}, or
    ``checkpoint=True`` to request a checkpoint (a counter, so repeated requests are all seen)."""
    path = Path(run_dir) / RunStore.CONTROL
    ctl = read_control(run_dir)  # only the fields that were usable: a damaged file is replaced whole
    if changes.pop("checkpoint", False):
        ctl["checkpoint_seq"] = int(ctl.get("checkpoint_seq", 0)) + 1
    ctl.update(changes)
    ctl["time"] = time.time()
    with _no_links():
        atomic_write_json(path, ctl, fsync=False, inside=run_dir)
    return ctl


def read_control(run_dir: str | Path) -> dict[str, Any]:
    """The usable fields of ``control.json`` (see ``read_control_checked``); {} when there is none."""
    return read_control_checked(run_dir)[0]


def read_control_checked(run_dir: str | Path) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """(usable fields, problems as (field, why)) of a run's control file.

    Why so careful: other processes write it (the studio, a cluster script, a newer version), so
    it may be half-written, huge, deeply nested or mistyped, and the training that polls it must
    never fail on it. Size is bounded before reading; fields are kept only with the right type:
    ``state`` one of CONTROL_STATES, ``time`` a finite number, ``checkpoint_seq`` an integer.
    """
    path = Path(run_dir) / RunStore.CONTROL
    name = RunStore.CONTROL
    try:
        size = path.stat().st_size
        if size > CONTROL_MAX_BYTES:
            return {}, [(name, f"it is {size:,} bytes, far more than a control file holds (limit {CONTROL_MAX_BYTES:,})")]
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, []
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        why = "it is nested too deeply" if isinstance(e, RecursionError) else "it is not valid JSON (half-written or damaged)"
        return {}, [(name, why)]
    if not isinstance(raw, dict):
        return {}, [(name, f"it holds a JSON {type(raw).__name__}, not an object")]
    clean: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []

    def bad(field: str, want: str) -> None:
        problems.append((field, f"{field}={_short(raw[field])} is not {want}"))

    if "state" in raw:
        if raw["state"] in CONTROL_STATES:
            clean["state"] = raw["state"]
        else:
            bad("state", "one of " + ", ".join(CONTROL_STATES))
    if "time" in raw:
        t = raw["time"]
        if isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t):
            clean["time"] = float(t)
        else:
            bad("time", "a finite number of seconds since 1970")
    if "checkpoint_seq" in raw:
        q = raw["checkpoint_seq"]
        if isinstance(q, int) and not isinstance(q, bool):
            clean["checkpoint_seq"] = q
        else:
            bad("checkpoint_seq", "an integer")
    return clean, problems


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


# -------------------------------------------------------------------- reading
@dataclass
class RunInfo:
    """A tolerant snapshot of one run folder; ``problems`` lists what is broken, by file."""

    path: Path
    name: str
    config: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        s = self.status.get("state", "unknown")
        if s in ACTIVE_STATES and self.is_stale:
            return "interrupted"
        return s

    @property
    def is_stale(self) -> bool:
        """The writer is gone: its process no longer exists on this host, or it has been silent too long."""
        if self.status.get("host") == HOST and isinstance(self.status.get("pid"), int) \
                and not _pid_alive(self.status["pid"]):
            return True
        upd = self.status.get("updated")
        return isinstance(upd, (int, float)) and time.time() - upd > STALE_AFTER_S

    @property
    def step(self) -> int:
        return int(self.status.get("step") or 0)

    @property
    def total_steps(self) -> int:
        return int(self.status.get("total_steps") or self.config.get("steps") or 0)

    def samples(self) -> list[tuple[int, Path]]:
        """(step, path) of every sample grid, oldest first."""
        out = []
        for p in (self.path / "samples").glob("step_*.png"):
            try:
                out.append((int(p.stem.split("_")[1]), p))
            except (IndexError, ValueError):
                continue
        return sorted(out)

    def latest_sample(self) -> Path | None:
        s = self.samples()
        return s[-1][1] if s else None

    def checkpoints(self) -> list[Path]:
        return sorted((self.path / "checkpoints").glob("step_*.pt"))

    def metrics(self) -> list[dict[str, Any]]:
        return read_jsonl(self.path / RunStore.METRICS)[0]

    def events(self) -> list[dict[str, Any]]:
        return read_jsonl(self.path / RunStore.EVENTS)[0]

    def last_error(self) -> str | None:
        for ev in reversed(self.events()):
            if ev.get("type") in ("error", "diverged"):
                return str(ev.get("message") or ev)
        return None


def load_run(path: str | Path) -> RunInfo:
    """Read a run folder without ever raising for broken contents: a file that cannot be read, and
    each field of the wrong type, becomes one line in ``problems`` (and is left out)."""
    p = Path(path)
    info = RunInfo(path=p, name=p.name)
    if not p.is_dir():
        info.problems.append(f"{p} is not a folder")
        return info
    try:
        raw = read_json(p / RunStore.CONFIG)
        if isinstance(raw, dict) and isinstance(raw.get("config"), dict):
            where = f"{RunStore.CONFIG} in {p.name}"
            info.config, bad = check_config(raw["config"], where)
            info.meta, bad_meta = check_fields({k: v for k, v in raw.items() if k != "config"}, META_KINDS, where)
            info.problems += bad + bad_meta
        else:
            info.problems.append(f"{RunStore.CONFIG} in {p.name} has no 'config' object")
    except ValueError as e:
        info.problems.append(str(e))
    try:
        st = read_json(p / RunStore.STATUS)
        if isinstance(st, dict):
            info.status, bad = check_fields(st, STATUS_KINDS, f"{RunStore.STATUS} in {p.name}", STATES)
            info.problems += bad
        else:
            info.problems.append(f"{RunStore.STATUS} in {p.name} is not a JSON object")
    except ValueError as e:
        info.problems.append(str(e))
    return info


def list_runs(root: str | Path) -> list[RunInfo]:
    """Every run folder (``NNNNN-name``) under ``root``, newest first; a missing root is empty."""
    r = Path(root).expanduser()
    if not r.is_dir():
        return []
    dirs = [p for p in r.iterdir() if p.is_dir() and _RUN_DIR_RE.match(p.name)]
    # By number, then name: "100000-x" is newer than "99999-x" although it sorts before it as text.
    key = lambda p: (int(_RUN_DIR_RE.match(p.name).group(1)), p.name)  # noqa: E731
    return [load_run(p) for p in sorted(dirs, key=key, reverse=True)]


def delete_run(root: str | Path, run_dir: str | Path) -> None:
    """Delete a run folder that lies inside ``root`` and is not being trained.

    Never through a link: a run folder that is itself a symbolic link is refused (resolving it could
    name another run inside the root, or a folder outside it), and links inside the folder are removed
    as links (shutil.rmtree does not follow them)."""
    root_r = Path(root).expanduser().resolve()
    link = Path(run_dir).expanduser()
    link = link if link.is_absolute() else root_r / link
    if link.is_symlink():
        raise RunError(f"{link.name} is a symbolic link (to {os.readlink(link)}); GAN Studio does not delete "
                       "through links: remove the link itself if it is not wanted")
    p = resolve_inside(root, run_dir)
    if p == root_r or not _RUN_DIR_RE.match(p.name):
        raise RunError(f"{run_dir} is not a run folder")
    info = load_run(p)
    if info.state in ACTIVE_STATES:
        host = info.status.get("host")
        raise RunError(f"{p.name} is still {info.state} (pid {info.status.get('pid')}"
                       + (f" on {host}" if host and host != HOST else "") + "); stop it before deleting")
    # A resume loading its data holds the lock while the status still says it ended: the lock decides.
    # It is held through the removal, so no resume can start in the middle of it.
    lock = FileLock(p / RunStore.LOCK)
    try:
        got = lock.acquire(record=False)
    except (OSError, UnsafePathError):  # no lock can be taken there, so no training holds it either
        got, lock = True, None
    if not got:
        pid, host = lock.holder()
        raise RunError(f"{p.name} is being trained or resumed by "
                       + (f"pid {pid}" + (f" on {host}" if host and host != HOST else "") if pid else "another process")
                       + "; stop it before deleting")
    try:
        if lock is not None and (who := live_holder(lock.previous, info.status, HOST, STALE_AFTER_S)):
            raise RunError(f"{p.name} is being trained or resumed by {who}; stop it before deleting")
        shutil.rmtree(p)
    finally:
        if lock is not None:
            lock.release(clear=False)


def lock_holder(info: RunInfo) -> str | None:
    """'pid N [on HOST] (last heartbeat …)' when a live process holds ``info``'s run folder, read from its lock
    record without taking the lock (taking it, even for an instant, could refuse a resume starting then)."""
    return live_holder(FileLock(info.path / RunStore.LOCK).record(), info.status, HOST, STALE_AFTER_S)
