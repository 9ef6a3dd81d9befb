"""Real-image statistics cached per dataset fingerprint + metric + n, in memory and in the dataset cache folder."""
from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..fsutil import atomic_write_bytes

VERSION = 1  # bump when what is cached (or how it is computed) changes
_MEMORY: dict[str, dict[str, Any]] = {}  # one process evaluates the same data repeatedly (the monitor)
_MEMORY_MAX = 8


def stats_key(**parts: Any) -> str:
    blob = json.dumps({"v": VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()


def stats_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    from ..data import default_cache_dir
    return (Path(cache_dir).expanduser() if cache_dir else default_cache_dir()) / "metrics"


def cached_stats(key: str, compute: Callable[[], dict[str, Any]], cache_dir: str | os.PathLike | None = None,
                 use_disk: bool = True) -> tuple[dict[str, Any], bool]:
    """(stats, hit): from memory, else from disk, else computed and stored. Disk problems never fail
    an evaluation: a cache that cannot be read or written is simply recomputed."""
    if key in _MEMORY:
        return _MEMORY[key], True
    path = stats_dir(cache_dir) / f"{key}.pt"
    stats = None
    if use_disk and path.is_file():
        try:
            stats = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:
            stats = None
    hit = stats is not None
    if stats is None:
        stats = compute()
        if use_disk:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                buf = io.BytesIO()
                torch.save(stats, buf)
                atomic_write_bytes(path, buf.getvalue(), fsync=False)
            except OSError:
                pass
    if len(_MEMORY) >= _MEMORY_MAX:
        _MEMORY.pop(next(iter(_MEMORY)))
    _MEMORY[key] = stats
    return stats, hit


def clear_memory() -> None:
    _MEMORY.clear()
