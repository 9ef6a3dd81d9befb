"""Keep the decoded-dataset cache within a size limit: list entries, evict the least recently used.

Why: every (folder contents, resolution, channels) combination is decoded once into a `.npy`
entry; without a limit old entries pile up (a 200k-image folder at 64 px is ~2.4 GB each). An
entry's last use is the modification time of its `<key>.json`, touched on every cache hit.
Removal deletes the `.json` first, so a concurrent reader sees the entry as absent (and rebuilds
it) rather than half-deleted; a process that already memory-mapped the images keeps its mapping.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MAX_GB = 20.0
MAX_GB_ENV = "GAN_STUDIO_CACHE_MAX_GB"
_PARTS = (".json", ".images.npy", ".labels.npy")  # ".json" first: its absence means "no entry"


@dataclass(frozen=True)
class CacheEntry:
    key: str
    kind: str           # "dataset" (decoded images) or "scan" (a folder's scan report)
    bytes: int
    last_used: float    # Unix time
    source: str         # where the images came from, when known
    detail: str = ""    # e.g. "10,000 images · 64 px · RGB"


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
    """Every complete entry in the folder (top level only: bench exports in subfolders are not entries)."""
    import json
    d = Path(cache_dir)
    out: list[CacheEntry] = []
    if not d.is_dir():
        return out
    for meta in d.glob("*.json"):
        name = meta.name
        if name.startswith("."):
            continue  # an entry being written (temp file)
        try:
            mtime = meta.stat().st_mtime
        except OSError:
            continue
        if name.endswith(".scan.json"):
            out.append(CacheEntry(name[:-len(".scan.json")], "scan", _size(meta), mtime, ""))
            continue
        key = name[:-len(".json")]
        source = detail = ""
        try:
            m = json.loads(meta.read_text(encoding="utf-8"))
            source = str(m.get("source", ""))
            detail = (f"{int(m['count']):,} images · {int(m['resolution'])} px · "
                      f"{'greyscale' if int(m['channels']) == 1 else 'RGB'}")
        except (OSError, ValueError, AttributeError, KeyError, TypeError):
            pass  # an entry without the usual fields still counts for the size limit
        out.append(CacheEntry(key, "dataset", sum(_size(d / f"{key}{s}") for s in _PARTS), mtime, source, detail))
    return sorted(out, key=lambda e: e.last_used)


def touch_entry(cache_dir: str | os.PathLike, key: str) -> None:
    """Mark an entry as just used (best effort: a read-only cache still works, it just ages)."""
    try:
        os.utime(Path(cache_dir) / f"{key}.json")
    except OSError:
        pass


def remove_entry(cache_dir: str | os.PathLike, entry: CacheEntry) -> None:
    d = Path(cache_dir)
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


def cmd_cache(args) -> int:
    """List the cache (oldest use first); --clear empties it; --max-gb trims it to a size now."""
    from ..estimate import human_bytes as _human
    from .cache import default_cache_dir
    d = default_cache_dir()
    if args.clear:
        gone, failed = clear(d)
        print(f"Removed {len(gone)} entries ({_human(sum(e.bytes for e in gone))}) from {d}"
              + (f"; {failed} could not be removed" if failed else ""))
        return 0
    if args.max_gb is not None:
        gone = evict(d, int(args.max_gb * 2**30), min_age_s=0)
        print(f"Removed {len(gone)} least recently used entries ({_human(sum(e.bytes for e in gone))})")
    entries = cache_entries(d)
    limit = max_cache_bytes()
    print(f"{d}: {len(entries)} entries, {_human(sum(e.bytes for e in entries))} "
          f"(limit {_human(limit) if limit else 'none'}; set {MAX_GB_ENV} to change it)")
    for e in entries:
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.last_used))
        print(f"  {used}  {_human(e.bytes):>9}  {e.kind:7}  {e.key[:12]}  {e.source}"
              + (f"  ({e.detail})" if e.detail else ""))
    return 0


def add_cache_parser(sub) -> None:
    c = sub.add_parser("cache", help="show the decoded-dataset cache; --clear empties it, --max-gb trims it")
    c.add_argument("--clear", action="store_true", help="remove every entry (datasets are decoded again when next used)")
    c.add_argument("--max-gb", dest="max_gb", type=float, help="remove least recently used entries down to this size")
    c.set_defaults(func=cmd_cache)
