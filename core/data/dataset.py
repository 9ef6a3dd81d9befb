"""ImageDataset and load_dataset: a folder or built-in name -> a cached uint8 tensor with labels."""
from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .builtin import BUILTIN_DATASETS, load_builtin
from .cache import cached_scan, load_folder_arrays, read_cache
from .errors import DataError
from .scan import ScanReport, display_path, scan_path

MIN_IMAGES = 8


@dataclass
class ImageDataset:
    images: torch.Tensor              # uint8, N x C x R x R (may share memory with a read-only memmap)
    labels: torch.Tensor | None       # int64, N; None when unlabelled
    class_names: list[str]
    channels: int
    resolution: int
    fingerprint: str                  # the cache key: same data + resolution + channels -> same value
    source: str                       # folder path or built-in name
    report: ScanReport | None = None  # None for built-in datasets

    @property
    def num_classes(self) -> int:
        return len(self.class_names) if self.labels is not None else 0

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @staticmethod
    def to_float(x: torch.Tensor) -> torch.Tensor:
        """uint8 [0, 255] -> float32 [-1, 1] (the range of a tanh generator)."""
        return x.float().div_(127.5).sub_(1.0)

    def grid_sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """n distinct real images (uint8, n x C x R x R), the same for the same seed."""
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(self), generator=g)[:min(n, len(self))]
        idx, _ = idx.sort()  # sorted indices read a memmap sequentially
        return self.images[idx].clone()


def _adapt_progress(progress: Callable[..., Any] | None) -> Callable[[str], Callable[[int, int], None]]:
    """Callers may pass progress(done, total) or progress(done, total, phase); phase is one of
    "scan", "decode" (folders) or "build" (built-in datasets)."""
    if progress is None:
        return lambda phase: None  # type: ignore[return-value]
    try:
        params = inspect.signature(progress).parameters.values()
        three = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params) >= 3 or \
            any(p.kind == p.VAR_POSITIONAL for p in params)
    except (TypeError, ValueError):
        three = False
    if three:
        return lambda phase: (lambda d, t: progress(d, t, phase))
    return lambda phase: progress


def _too_few(report: ScanReport, folder: str) -> DataError:
    n = report.usable
    msg = f"{folder}: found {n} usable image{'' if n == 1 else 's'}, need at least {MIN_IMAGES}."
    if report.rejected:
        top = "; ".join(f"{n} x {why}" for why, n in report.reason_counts().most_common(3))
        msg += f" Rejected {len(report.rejected)} files ({top})."
    if report.ignored:
        msg += f" Ignored {report.ignored} files that are not png/jpg/jpeg/webp/bmp/gif/tif/tiff."
    if not n and not report.rejected and not report.ignored:
        msg += " The folder (and its subfolders) holds no image files."
    elif n and not report.rejected:
        msg += f" Add at least {MIN_IMAGES - n} more image{'' if MIN_IMAGES - n == 1 else 's'} to it."
    return DataError(msg)


def load_dataset(spec: str, resolution: int, channels: int = 0, cache_dir: str | os.PathLike | None = None,
                 progress: Callable[..., Any] | None = None, memory_budget_mb: float = 2048,
                 workers: int | None = None) -> ImageDataset:
    """Load a built-in dataset by name or an image folder, decoded once and cached.

    channels: 1, 3, or 0 to decide from the data (greyscale folders -> 1).
    Arrays bigger than memory_budget_mb stay memory-mapped instead of being read into RAM.
    """
    if not isinstance(resolution, int) or not 4 <= resolution <= 1024:
        raise DataError(f"resolution must be an integer between 4 and 1024, got {resolution!r}")
    if channels not in (0, 1, 3):
        raise DataError(f"channels must be 0 (auto), 1 or 3, got {channels!r}")
    phase = _adapt_progress(progress)
    raw = str(spec)
    # Pasted names lose stray spaces, but a folder whose own name ends in one (or a newline) is kept whole.
    spec = raw if raw != raw.strip() and os.path.isdir(raw) else raw.strip()
    report = None
    if spec.lower() in BUILTIN_DATASETS:
        source = spec.lower()
        arr = load_builtin(source, resolution, channels, cache_dir, phase("build"), memory_budget_mb)
    else:
        if not spec:
            raise DataError(f"no dataset given: name an image folder or one of {', '.join(BUILTIN_DATASETS)}")
        try:
            folder = scan_path(spec)
        except DataError as e:
            raise DataError(f"{e} (built-in datasets: {', '.join(BUILTIN_DATASETS)})") from None
        source = str(folder.resolve())
        report = cached_scan(folder, phase("scan"), cache_dir, workers)
        if report.usable < MIN_IMAGES:
            raise _too_few(report, display_path(source))
        channels = channels or (1 if report.grey else 3)
        arr = load_folder_arrays(report, resolution, channels, cache_dir, phase("decode"),
                                 memory_budget_mb, workers)
    return _to_dataset(arr, resolution, source, report)


def load_cached_dataset(fingerprint: str, source: str, resolution: int,
                        cache_dir: str | os.PathLike | None = None,
                        memory_budget_mb: float = 2048) -> ImageDataset | None:
    """The decoded cache of a dataset by its fingerprint (the cache key), or None when it is gone.

    Lets a run resume after its source folder moved or vanished: the cache is what it trained on."""
    arr = read_cache(fingerprint, cache_dir, memory_budget_mb)
    return _to_dataset(arr, resolution, source, None) if arr is not None else None


def _to_dataset(arr, resolution: int, source: str, report) -> ImageDataset:
    images = arr.images
    with warnings.catch_warnings():
        # A memmap is read-only; torch warns that writing would be undefined. Nothing writes to it.
        warnings.simplefilter("ignore", UserWarning)
        t = torch.from_numpy(images) if isinstance(images, np.memmap) else torch.from_numpy(np.asarray(images))
    class_names = list(arr.meta.get("class_names") or [])
    labels = torch.from_numpy(np.ascontiguousarray(arr.labels)) if class_names else None
    return ImageDataset(images=t, labels=labels, class_names=class_names, channels=int(t.shape[1]),
                        resolution=resolution, fingerprint=arr.key, source=source, report=report)
