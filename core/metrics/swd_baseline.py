"""Real-vs-real SWD of a dataset: the score two disjoint real samples get, the floor a generator's SWD is read against."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from . import laplacian_swd as swd_mod
from .cache import stats_dir, stats_key
from .evaluate import real_swd_stats, select_real


def _path(data: str, resolution: int, channels: int, n: int, seed: int, cache_dir: Any = None) -> Path:
    key = stats_key(kind="swd-baseline", data=str(data), res=int(resolution), ch=int(channels), n=int(n),
                    seed=int(seed), per_image=swd_mod.DESCRIPTORS_PER_IMAGE)
    return stats_dir(cache_dir) / f"baseline-{key}.json"


def cached_baseline(data: str, resolution: int, channels: int, n: int, seed: int,
                    cache_dir: Any = None) -> float | None:
    """The stored baseline, or None (nothing stored, or a file that cannot be used); never computes."""
    try:
        p = _path(data, resolution, channels, n, seed, cache_dir)
        if not p.is_file() or p.stat().st_size > 4096:
            return None
        v = json.loads(p.read_text()).get("swd")
    except (OSError, ValueError, AttributeError, RecursionError):
        return None
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v else None


@torch.no_grad()
def compute_baseline(data: str, resolution: int, channels: int = 0, n: int = 512, seed: int = 0,
                     cache_dir: Any = None, images: torch.Tensor | None = None, fingerprint: str | None = None) -> float:
    """SWD (x10^3, pyramid average) between the real set the quality hook scores against (same n and seed)
    and n other real images; stored in the user cache so it is computed once per dataset and size."""
    if images is None:
        from ..data import load_dataset
        ds = load_dataset(data, resolution, channels=channels)
        images, fingerprint = ds.images, ds.fingerprint
    n = min(max(16, n), len(images) // 2)
    if n < 16:
        raise ValueError(f"a real-vs-real baseline needs at least 32 images; this dataset has {len(images)}")
    a = select_real(images, n, seed)
    chosen = set(torch.randperm(len(images), generator=torch.Generator().manual_seed(seed + 7))[:n].tolist()) \
        if n < len(images) else set(range(len(images)))
    rest = [i for i in torch.randperm(len(images), generator=torch.Generator().manual_seed(seed + 11)).tolist()
            if i not in chosen][:n]
    b = images[sorted(rest)].clone()
    ref, _ = real_swd_stats(a, fingerprint, seed, cache_dir)
    value = float(swd_mod.swd(ref, b, seed=seed)["avg"])
    try:
        p = _path(data, resolution, channels, n, seed, cache_dir)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"swd": value, "n": n}))
        os.replace(tmp, p)
    except OSError:
        pass
    return value
