"""Crash-safe file primitives: atomic replace, tolerant JSONL append/read, finite-safe JSON."""
from __future__ import annotations

import errno
import json
import math
import os
import stat
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class UnsafePathError(ValueError):
    """A write that would go through a symbolic link, or out of the folder it belongs in; names the path."""


def check_write_target(path: str | Path, inside: str | Path | None = None) -> None:
    """Refuse to write ``path`` when it is a symbolic link or not a regular file, or (with ``inside``) when
    its folder, links resolved, is not ``inside`` or a folder under it.

    Why: a runs folder can be shared, and a link planted in a run folder (events.jsonl -> ~/.bashrc,
    checkpoints/ -> someone's folder) would make a training or a resume write where its owner never meant."""
    p = Path(path)
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISLNK(st.st_mode):
        raise UnsafePathError(f"{p} is a symbolic link (to {os.readlink(p)}); GAN Studio never writes through a "
                              "link in a run folder. Replace it with a regular file or remove it")
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise UnsafePathError(f"{p} is not a regular file; refusing to write it")
    if inside is not None:
        root = os.path.realpath(inside)
        parent = os.path.realpath(p.parent)
        if parent != root and not parent.startswith(root.rstrip(os.sep) + os.sep):
            raise UnsafePathError(f"{p.parent} leads outside {inside} (to {parent}) through a symbolic link; "
                                  "refusing to write there")


def atomic_write_bytes(path: str | Path, data: bytes, fsync: bool = True, inside: str | Path | None = None) -> None:
    """Write ``data`` to a temp file beside ``path``, fsync, then rename over it.

    A reader (or a crash) sees either the old file or the new one, never a mix; the temp
    file lives in the same directory so ``os.replace`` is an atomic rename on one filesystem.
    With ``inside`` (a run folder) a link at ``path`` or on the way to it is refused (check_write_target).
    """
    path = Path(path)
    if inside is not None:
        check_write_target(path, inside)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if fsync:
        fsync_dir(path.parent)


def fsync_dir(path: str | Path) -> None:
    """Make a rename durable (POSIX needs the directory entry flushed too)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_json(path: str | Path, obj: Any, fsync: bool = True, inside: str | Path | None = None) -> None:
    atomic_write_bytes(path, (json.dumps(finite_json(obj), indent=2) + "\n").encode("utf-8"), fsync=fsync,
                       inside=inside)


def finite_json(obj: Any) -> Any:
    """Replace NaN/inf floats by None so the result is strict JSON (json.dumps would write NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    return obj


def metrics_row(row: dict[str, Any]) -> dict[str, Any]:
    """A metrics row with non-finite numbers written as null and listed under ``nonfinite``."""
    bad = [k for k, v in row.items() if isinstance(v, float) and not math.isfinite(v)]
    out = finite_json(row)
    if bad:
        out["nonfinite"] = bad
    return out


class JsonlAppender:
    """Append-only JSON-lines file; every line is flushed so other processes see it at once.

    Opened with O_NOFOLLOW and checked to be a regular file: a link or a FIFO planted in its place is
    refused (UnsafePathError naming it) instead of appended to or blocked on."""

    def __init__(self, path: str | Path, inside: str | Path | None = None):
        self.path = Path(path)
        check_write_target(self.path, inside)
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:  # O_NONBLOCK: a FIFO swapped in after the check must not block the open
            fd = os.open(self.path, flags | getattr(os, "O_NONBLOCK", 0), 0o644)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise UnsafePathError(f"{self.path} is a symbolic link; GAN Studio never writes through a link "
                                      "in a run folder") from None
            raise
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise UnsafePathError(f"{self.path} is not a regular file; refusing to write it")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        # A previous crash may have left a torn last line; start on a fresh line so our
        # first record is not glued to it (readers skip the torn fragment).
        needs_newline = st.st_size > 0 and os.pread(fd, 1, st.st_size - 1) != b"\n"
        self._f = open(fd, "a", encoding="utf-8")
        if needs_newline:
            self._f.write("\n")
            self._f.flush()

    def write(self, obj: dict[str, Any]) -> None:
        self._f.write(json.dumps(finite_json(obj), separators=(",", ":")) + "\n")
        self._f.flush()

    def write_many(self, objs: Iterable[dict[str, Any]]) -> None:
        self._f.write("".join(json.dumps(finite_json(o), separators=(",", ":")) + "\n" for o in objs))
        self._f.flush()

    def sync(self) -> None:
        try:
            os.fsync(self._f.fileno())
        except (OSError, ValueError):
            pass

    def close(self) -> None:
        if not self._f.closed:
            try:
                self._f.close()
            except OSError:  # the disk is full: lines that never reached it are lost, the file is closed
                pass


def read_jsonl(path: str | Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Read complete JSON lines from byte ``offset``; return (records, offset after the last complete line).

    A torn last line (no newline yet: a writer mid-append, or a crash) is not consumed, so an
    incremental reader picks it up once it is complete. Lines that are not valid JSON objects are skipped.
    """
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except (FileNotFoundError, NotADirectoryError):
        return [], offset
    end = data.rfind(b"\n")
    if end < 0:
        return [], offset
    out = []
    for line in data[: end + 1].splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except (ValueError, RecursionError, MemoryError):  # damaged, half-written or hostile (deep) line
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out, offset + end + 1


JSON_MAX_BYTES = 8 << 20  # config.json / status.json are a few KB; a run folder file this large is not ours
JSON_MAX_DEPTH = 64  # ours nest 3-4 levels; deeper structures would only feed recursion further on


def loads_bounded(text: str | bytes, what: str, max_depth: int = JSON_MAX_DEPTH) -> Any:
    """``json.loads`` that never raises anything but ValueError naming ``what``.

    Why: files in a run folder are written by other processes and can be half-written or hostile;
    a deep array raises RecursionError, a huge one MemoryError. NaN/Infinity (which Python's json
    writes and reads) become None so every number a reader gets is finite."""
    try:
        obj = json.loads(text, parse_constant=lambda _c: None)
    except RecursionError:
        raise ValueError(f"{what} is nested too deeply to be one of ours") from None
    except MemoryError:
        raise ValueError(f"{what} is too large to read") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"{what} is unreadable or not valid JSON ({str(e).splitlines()[0][:120]})") from None
    if json_depth(obj, max_depth) > max_depth:
        raise ValueError(f"{what} is nested more than {max_depth} levels deep; it is not one of ours")
    return obj


def json_depth(obj: Any, limit: int) -> int:
    """Nesting depth of a parsed JSON value, counted without recursion and stopping past ``limit``."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        o, d = stack.pop()
        if isinstance(o, (dict, list)):
            deepest = max(deepest, d)
            if deepest > limit:
                return deepest
            stack.extend((v, d + 1) for v in (o.values() if isinstance(o, dict) else o))
    return deepest


def read_json(path: str | Path, max_bytes: int = JSON_MAX_BYTES) -> Any:
    """Load a JSON file; raise ValueError naming the file when it is missing, too large, too deep or broken."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise ValueError(f"{p.name} is missing in {p.parent}") from None
    except OSError as e:
        raise ValueError(f"{p} is unreadable ({e.strerror or type(e).__name__})") from None
    if len(data) > max_bytes:
        raise ValueError(f"{p} is larger than {max_bytes >> 20} MB; it is not one of ours")
    return loads_bounded(data, str(p))


class FileLock:
    """An exclusive, non-blocking advisory lock on ``path`` (flock), held until release() or exit.

    Why flock: the kernel drops it when the holder's process dies, so a crash never leaves a stale
    lock, and it belongs to one open file description, so two threads of one process that each
    open the file exclude each other too. But flock does not reach across machines on many network
    filesystems (NFS without lockd, SMB, sshfs), so the file also holds a record of the holder
    (JSON: pid, host, started), written on acquire and emptied on release; ``previous`` is the
    record found on acquiring (a non-empty one: its holder died, or holds it from another machine).
    Where fcntl is missing (Windows) or the filesystem has no locks, acquire() always succeeds.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._fd: int | None = None
        self.previous: dict[str, Any] = {}

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, record: bool = True) -> bool:
        """Take the lock; False when another holder has it (see holder()). Without ``record`` the
        caller looks at ``previous`` first and then calls write_record() (or release(clear=False))."""
        if self._fd is not None:
            return True
        # O_NOFOLLOW: a link planted as the lock file must not make us truncate what it points to.
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0),
                         0o644)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise UnsafePathError(f"{self.path} is a symbolic link; GAN Studio never writes through a link "
                                      "in a run folder") from None
            raise
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: the record alone
            fcntl = None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):  # someone holds it
                    os.close(fd)
                    return False
                # ENOLCK, EOPNOTSUPP...: a filesystem without locks (NFS without lockd); the record decides
        self._fd = fd
        try:
            self.previous = parse_lock_record(os.pread(fd, 4096, 0))
        except OSError:
            self.previous = {}
        if record:
            self.write_record()
        return True

    def write_record(self) -> None:
        """Name this process as the holder (for messages, and for other machines that cannot see the flock)."""
        import socket
        if self._fd is None:
            return
        note = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()})
        try:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, (note + "\n").encode(), 0)
        except OSError:
            pass  # the note is for messages only; the lock itself is held

    def record(self) -> dict[str, Any]:
        """The current holder's record ({} when released, unreadable or never written)."""
        try:  # never through a link, never blocking on a FIFO planted in a (hostile) run folder
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            return {}
        try:
            return parse_lock_record(os.read(fd, 4096)) if stat.S_ISREG(os.fstat(fd).st_mode) else {}
        except OSError:
            return {}
        finally:
            os.close(fd)

    def holder(self) -> tuple[int | None, str]:
        """(pid, host) written by the current holder, (None, "") when unknown."""
        rec = self.record()
        return rec.get("pid"), rec.get("host", "")

    def release(self, clear: bool = True) -> None:
        """Let go; with ``clear`` (the holder wrote its record) empty the record first, so that no other
        machine mistakes the file for a live holder."""
        fd, self._fd = self._fd, None
        if fd is not None:
            if clear:
                try:
                    os.ftruncate(fd, 0)
                except OSError:
                    pass
            try:
                os.close(fd)  # closing the last descriptor of the open file releases the flock
            except OSError:
                pass

    def __del__(self) -> None:  # a writer dropped without closing must not hold its run forever
        self.release()


def parse_lock_record(data: bytes) -> dict[str, Any]:
    """{pid, host, started} from a lock file: JSON, or the older "pid host" line; {} when empty or not one.

    Only well-typed fields are kept: another machine (or a hostile user) may have written the file."""
    text = data.decode("utf-8", "replace").strip()
    if not text:
        return {}
    try:
        raw = json.loads(text)
    except ValueError:
        pid, _, host = text.partition(" ")
        raw = {"pid": pid, "host": host}
        try:
            raw["pid"] = int(pid)
        except ValueError:
            return {}
    if not isinstance(raw, dict):
        return {}
    out: dict[str, Any] = {}
    if isinstance(raw.get("pid"), int) and not isinstance(raw["pid"], bool):
        out["pid"] = raw["pid"]
    if isinstance(raw.get("host"), str) and raw["host"]:
        out["host"] = raw["host"][:255]
    t = raw.get("started")
    if isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t):
        out["started"] = float(t)
    return out
