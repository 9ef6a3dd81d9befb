"""Decoded-dataset cache: uint8 image arrays + labels on disk, keyed by content, written atomically."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .cache_evict import entries_dir, evict, is_key, own_meta, touch_entry
from .decode import _decode_chunk
from .errors import DataError
from .parallel import chunked, map_chunks
from .scan import ScanReport, display_path, list_folder, listing_key, scan

FORMAT_VERSION = 1
# Bumped when decode.load_image would give different pixels for the same file (2: crop at source
# size, then resize), so a folder is decoded afresh instead of mixing old and new pixels.
DECODE_VERSION = 2
ProgressFn = Callable[[int, int], None]


def default_cache_dir() -> Path:
    """$GAN_STUDIO_CACHE, else ~/.cache/gan-studio."""
    env = os.environ.get("GAN_STUDIO_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "gan-studio"


def _dir(cache_dir: str | os.PathLike | None) -> Path:
    d = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create the cache folder {d}: {e.strerror or e}. "
                        "Set GAN_STUDIO_CACHE to a writable folder.") from e
    return d


def _entries(cache_dir: str | os.PathLike | None) -> Path:
    """The entry subfolder of the cache (created): entries never lie loose among a user's files."""
    d = entries_dir(_dir(cache_dir))
    try:
        d.mkdir(exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create the cache folder {d}: {e.strerror or e}. "
                        "Set GAN_STUDIO_CACHE to a writable folder.") from e
    return d


def _entry_folders(cache_dir: str | os.PathLike | None) -> tuple[Path, Path]:
    """Where an entry may be: the entry subfolder, then the top level (entries of older versions)."""
    top = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    return entries_dir(top), top


def folder_key(report: ScanReport, resolution: int, channels: int) -> str:
    """sha1 over every usable file's (relative path, size, mtime_ns) + resolution + channels."""
    h = hashlib.sha1(f"gan-studio-cache v{FORMAT_VERSION} folder d{DECODE_VERSION} r{resolution} c{channels}\n".encode())
    prefix = report.root.rstrip(os.sep) + os.sep
    for r in report.images:
        # Paths come from walking the root, so slicing gives relpath()'s answer ~10x faster (60k files: 0.3 s).
        rel = r.path[len(prefix):] if r.path.startswith(prefix) else os.path.relpath(r.path, report.root)
        h.update(os.fsencode(rel) + b"\0%d\0%d\0%d\n" % (r.size, r.mtime_ns, r.label))
    return h.hexdigest()


def builtin_key(name: str, resolution: int, channels: int, version: int = 1) -> str:
    return hashlib.sha1(f"gan-studio-cache v{FORMAT_VERSION} builtin {name} v{version} "
                        f"r{resolution} c{channels}".encode()).hexdigest()


@dataclass
class CachedArrays:
    images: np.ndarray     # (N, C, R, R) uint8, in memory or a read-only memmap
    labels: np.ndarray     # (N,) int64, -1 when unlabelled
    meta: dict[str, Any]
    key: str
    hit: bool              # True when read from an existing cache


# ------------------------------------------------------------------ atomic writing
def _fsync_replace(tmp: str, final: Path) -> None:
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, final)


def _tmp_path(d: Path, name: str) -> str:
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=d)
    os.close(fd)
    return tmp


def write_cache(key: str, shape: tuple[int, int, int, int],
                fill: Callable[[np.ndarray, np.ndarray], None], meta: dict[str, Any],
                cache_dir: str | os.PathLike | None = None) -> None:
    """Create `<key>.images.npy` / `.labels.npy` / `.json` by letting `fill(images, labels)` write
    into a memmap, so a dataset larger than RAM never has to exist in memory at once. The .json
    is written last: its presence means the other two are complete. ``key`` must be a fingerprint
    (folder_key / builtin_key): only such entries are ever listed, evicted or cleared."""
    if not is_key(key):
        raise ValueError(f"cache key {key!r} is not a 40-hex fingerprint (folder_key / builtin_key)")
    top = _dir(cache_dir)
    d = _entries(top)
    tmps: list[str] = []
    try:
        img_tmp = _tmp_path(d, f"{key}.images.npy")
        tmps.append(img_tmp)
        images = np.lib.format.open_memmap(img_tmp, mode="w+", dtype=np.uint8, shape=shape)
        labels = np.full((shape[0],), -1, dtype=np.int64)
        fill(images, labels)
        images.flush()
        del images
        lab_tmp = _tmp_path(d, f"{key}.labels.npy")
        tmps.append(lab_tmp)
        with open(lab_tmp, "wb") as f:
            np.save(f, labels)
        meta_tmp = _tmp_path(d, f"{key}.json")
        tmps.append(meta_tmp)
        full = {**meta, "count": int(shape[0]), "shape": list(shape), "fingerprint": key,
                "format_version": FORMAT_VERSION, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        with open(meta_tmp, "w", encoding="utf-8") as f:
            json.dump(full, f, indent=1)
        _fsync_replace(img_tmp, d / f"{key}.images.npy")
        _fsync_replace(lab_tmp, d / f"{key}.labels.npy")
        _fsync_replace(meta_tmp, d / f"{key}.json")
        tmps.clear()
        evict(top, keep=frozenset({key}))  # stay under $GAN_STUDIO_CACHE_MAX_GB: drop the least recently used
    except OSError as e:
        raise DataError(f"cannot write the dataset cache in {d}: {e.strerror or e}. "
                        "Free some disk space or set GAN_STUDIO_CACHE to another folder.") from e
    finally:
        for t in tmps:
            try:
                os.unlink(t)
            except OSError:
                pass


def read_cache(key: str, cache_dir: str | os.PathLike | None = None,
               memory_budget_mb: float = 2048) -> CachedArrays | None:
    """The cached arrays for `key`, or None if absent or damaged. Arrays within the memory budget
    are copied into RAM (fast random batches); larger ones stay memory-mapped, read-only."""
    for d in _entry_folders(cache_dir):
        if (d / f"{key}.json").is_file():
            return _read_entry(d, key, memory_budget_mb)
    return None


def _read_entry(d: Path, key: str, memory_budget_mb: float) -> CachedArrays | None:
    try:
        meta = json.loads((d / f"{key}.json").read_text(encoding="utf-8"))
        if not own_meta(meta, key) or meta.get("format_version") != FORMAT_VERSION:
            return None
        images = np.load(d / f"{key}.images.npy", mmap_mode="r")
        labels = np.load(d / f"{key}.labels.npy")
        if (list(images.shape) != meta["shape"] or images.dtype != np.uint8
                or labels.shape != (images.shape[0],)):
            return None
        if images.nbytes <= memory_budget_mb * 2**20:
            images = np.array(images)  # one sequential read; far faster than page faults per batch
        touch_entry(d, key)  # last use, for the size limit's least-recently-used eviction
        return CachedArrays(images, labels.astype(np.int64, copy=False), meta, key, True)
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return None  # a damaged cache is rebuilt, never trusted


# ------------------------------------------------------------------ folders
def cached_scan(folder: str | os.PathLike, progress: ProgressFn | None = None,
                cache_dir: str | os.PathLike | None = None, workers: int | None = None) -> ScanReport:
    """scan(), reusing the previous report when no file was added, removed or modified, so a warm
    start only lists and stats the folder instead of decoding every image again."""
    d = _entries(cache_dir)
    listing = list_folder(folder)
    key = listing_key(listing)
    for where in _entry_folders(cache_dir):
        rep = _read_scan(where / f"{key}.scan.json", key)
        if rep is not None:
            touch_entry(where, f"{key}.scan")
            if progress:
                progress(len(listing.candidates), len(listing.candidates))
            return rep
    rep = scan(folder, progress=progress, workers=workers, listing=listing)
    p = d / f"{key}.scan.json"
    tmp = _tmp_path(d, p.name)
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            # The key first: cache_evict recognises its own scan entries by their first bytes.
            json.dump({"fingerprint": key, **rep._state()}, f)  # ensure_ascii keeps surrogate-escaped names
        os.replace(tmp, p)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass  # the scan cache is an optimisation; failing to write it is not an error
    return rep


def _read_scan(p: Path, key: str) -> ScanReport | None:
    if not p.is_file():
        return None
    try:
        state = json.loads(p.read_text(encoding="utf-8"))
        # Entries of older versions (top level) have no "fingerprint"; newer ones must name their key.
        if state.pop("fingerprint", key) != key:
            return None
        return ScanReport._from_state(state)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def load_folder_arrays(report: ScanReport, resolution: int, channels: int,
                       cache_dir: str | os.PathLike | None = None, progress: ProgressFn | None = None,
                       memory_budget_mb: float = 2048, workers: int | None = None) -> CachedArrays:
    """Decode every usable image of `report` once into the cache (or reuse it) and return it."""
    key = folder_key(report, resolution, channels)
    hit = read_cache(key, cache_dir, memory_budget_mb)
    n = len(report.images)
    if hit is not None:
        if progress:
            progress(n, n)
        return hit
    paths = [r.path for r in report.images]
    # Chunks small enough for smooth progress, large enough to amortise process hand-off.
    size = max(8, min(256, n // 64 or 8))

    def fill(images: np.ndarray, labels: np.ndarray) -> None:
        labels[:] = [r.label for r in report.images]
        done = 0
        if progress:
            progress(0, n)
        for block in map_chunks(_decode_chunk, chunked(paths, size), resolution, channels, workers=workers):
            images[done:done + len(block)] = block
            done += len(block)
            if progress:
                progress(done, n)

    meta = {"source": display_path(report.root), "kind": "folder", "class_names": report.class_names,
            "resolution": resolution, "channels": channels}
    write_cache(key, (n, channels, resolution, resolution), fill, meta, cache_dir)
    out = read_cache(key, cache_dir, memory_budget_mb)
    if out is None:
        raise DataError(f"the dataset cache for {display_path(report.root)} in "
                        f"{entries_dir(cache_dir or default_cache_dir())} could not be read back after writing it.")
    out.hit = False
    return out
