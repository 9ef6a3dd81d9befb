"""Keep the decoded-dataset cache within a size limit: list entries, evict the least recently used.

Why: every (folder contents, resolution, channels) combination is decoded once into a `.npy`
entry; without a limit old entries pile up (a 200k-image folder at 64 px is ~2.4 GB each). An
entry's last use is the modification time of its `<key>.json`, touched on every cache hit.
Removal deletes the `.json` first, so a concurrent reader sees the entry as absent (and rebuilds
it) rather than half-deleted; a process that already memory-mapped the images keeps its mapping.

Ownership: $GAN_STUDIO_CACHE may point at a folder that holds other files (a dataset's
`instances_train2017.json`, a project's `package.json`), so clearing and eviction only ever touch
entries this cache wrote: a 40-hex fingerprint name *and* content that names the same fingerprint.
Entries live in the ENTRY_DIR subfolder; entries of older versions, written at the top level, are
still read, listed and removed by the same rule. Anything else is never listed and never deleted.
"""
from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MAX_GB = 20.0
MAX_GB_ENV = "GAN_STUDIO_CACHE_MAX_GB"
ENTRY_DIR = "gan-studio-cache-v1"  # under $GAN_STUDIO_CACHE; downloads, metrics/ and bench/ sit beside it
_PARTS = (".json", ".images.npy", ".labels.npy")  # ".json" first: its absence means "no entry"
_KEY_RE = re.compile(r"^[0-9a-f]{40}$")  # what folder_key, builtin_key and listing_key produce (sha1)
_SCAN_HEAD = '{"fingerprint": "'  # how a scan entry starts (cache.cached_scan writes the key first)


@dataclass(frozen=True)
class CacheEntry:
    key: str
    kind: str           # "dataset" (decoded images) or "scan" (a folder's scan report)
    bytes: int
    last_used: float    # Unix time
    source: str         # where the images came from, when known
    detail: str = ""    # e.g. "10,000 images · 64 px · RGB"
    folder: str = ""    # the folder holding its files (ENTRY_DIR, or the top level for old entries)


def entries_dir(cache_dir: str | os.PathLike) -> Path:
    """Where new entries are written: a subfolder of its own, so the cache never mixes with a user's files."""
    return Path(cache_dir).expanduser() / ENTRY_DIR


def is_key(key: str) -> bool:
    return bool(_KEY_RE.match(key))


def own_meta(meta: object, key: str) -> bool:
    """True when a parsed `<key>.json` is a dataset entry written by this cache (it names its own key)."""
    return isinstance(meta, dict) and meta.get("fingerprint") == key and "format_version" in meta


def own_scan(path: Path, key: str) -> bool:
    """True when `<key>.scan.json` starts as cache.cached_scan writes it (read: its first bytes only;
    a scan of a large folder is megabytes). Top-level files of older versions start with the report's root."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(_SCAN_HEAD) + 41).decode("utf-8", errors="replace")
    except OSError:
        return False
    return head == f'{_SCAN_HEAD}{key}"' or (path.parent.name != ENTRY_DIR and head.startswith('{"root": "'))


def max_cache_bytes() -> int:
    """The limit from $GAN_STUDIO_CACHE_MAX_GB (default 20 GB); 0 or less means no limit."""
    raw = os.environ.get(MAX_GB_ENV, "")
    try:
        gb = float(raw) if raw.strip() else DEFAULT_MAX_GB
    except ValueError:
        gb = DEFAULT_MAX_GB
    return int(gb * 2**30) if gb > 0 else 0


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return 0


def cache_entries(cache_dir: str | os.PathLike) -> list[CacheEntry]:
    """Every complete entry this cache wrote, least recently used first (see "Ownership" above)."""
    top = Path(cache_dir).expanduser()
    out: list[CacheEntry] = []
    for d in (entries_dir(top), top):
        if d.is_dir():
            out.extend(_entries_in(d))
    return sorted(out, key=lambda e: e.last_used)


def _entries_in(d: Path) -> list[CacheEntry]:
    out: list[CacheEntry] = []
    for meta in d.glob("*.json"):  # temp files start with "." and end in .tmp: never matched below
        name = meta.name
        scan = name.endswith(".scan.json")
        key = name[:-len(".scan.json")] if scan else name[:-len(".json")]
        if not is_key(key):
            continue
        try:
            mtime = meta.stat().st_mtime
        except OSError:
            continue
        if scan:
            if own_scan(meta, key):
                out.append(CacheEntry(key, "scan", _size(meta), mtime, "", folder=str(d)))
            continue
        try:
            m = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # unreadable: not provably ours, so never removed
        if not own_meta(m, key):
            continue
        source = str(m.get("source", ""))
        try:
            detail = (f"{int(m['count']):,} images · {int(m['resolution'])} px · "
                      f"{'greyscale' if int(m['channels']) == 1 else 'RGB'}")
        except (KeyError, TypeError, ValueError):
            detail = ""  # an entry without the usual fields still counts for the size limit
        out.append(CacheEntry(key, "dataset", sum(_size(d / f"{key}{s}") for s in _PARTS), mtime, source,
                              detail, folder=str(d)))
    return out


def touch_entry(folder: str | os.PathLike, key: str) -> None:
    """Mark an entry as just used (best effort: a read-only cache still works, it just ages)."""
    try:
        os.utime(Path(folder) / f"{key}.json")
    except OSError:
        pass


def remove_entry(cache_dir: str | os.PathLike, entry: CacheEntry) -> None:
    d = Path(entry.folder) if entry.folder else entries_dir(cache_dir)
    parts = (".scan.json",) if entry.kind == "scan" else _PARTS
    for suffix in parts:
        try:
            (d / f"{entry.key}{suffix}").unlink()
        except FileNotFoundError:
            pass


def evict(cache_dir: str | os.PathLike, max_bytes: int | None = None, keep: frozenset[str] = frozenset(),
          min_age_s: float = 60.0) -> list[CacheEntry]:
    """Remove least-recently-used entries until the folder holds at most ``max_bytes``.

    Entries in ``keep`` and entries used in the last ``min_age_s`` seconds (another process may
    be about to open them) are never removed, even if that leaves the cache over the limit.
    Returns what was removed.
    """
    limit = max_cache_bytes() if max_bytes is None else max_bytes
    if limit <= 0:
        return []
    entries = cache_entries(cache_dir)
    total = sum(e.bytes for e in entries)
    removed: list[CacheEntry] = []
    now = time.time()
    for e in entries:  # oldest first
        if total <= limit:
            break
        if e.key in keep or now - e.last_used < min_age_s:
            continue
        try:
            remove_entry(cache_dir, e)
        except OSError:
            continue
        total -= e.bytes
        removed.append(e)
    return removed


# ------------------------------------------------------------------ CLI: python -m core cache
def clear(cache_dir: str | os.PathLike) -> tuple[list[CacheEntry], int]:
    """Remove every entry; returns (removed, how many could not be removed, e.g. held open on Windows)."""
    removed, failed = [], 0
    for e in cache_entries(cache_dir):
        try:
            remove_entry(cache_dir, e)
            removed.append(e)
        except OSError:
            failed += 1
    return removed, failed
