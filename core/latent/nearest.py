"""Nearest training images to a generated sample (memorisation check), in pixel or discriminator-feature space."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

from ..generator import LoadedGenerator


# ------------------------------------------------------------------ nearest training images
@dataclass
class Neighbours:
    indices: list[int]       # into the training set
    distances: list[float]
    images: torch.Tensor     # (k, C, H, W) uint8
    space: str               # "pixel" or "d-features"
    searched: int            # how many training images were compared
    total: int               # training-set size


def subset_indices(total: int, max_images: int | None, seed: int = 0) -> torch.Tensor:
    """All indices, or a fixed random subset of ``max_images`` (sorted, the same every time)."""
    if not max_images or total <= max_images:
        return torch.arange(total)
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(total, generator=g)[:max_images].sort().values


def d_needs_labels(D: nn.Module) -> bool:
    """A conditional D whose features depend on the label (input concatenation, e.g. the MLP); projection
    discriminators (dcgan, resnet-sn) compute label-free features."""
    return bool(getattr(D, "num_classes", 0)) and getattr(D, "embed", None) is None


@torch.no_grad()
def d_features(D: nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None,
               batch_size: int = 256) -> torch.Tensor:
    """(N, F) unit-normalised discriminator features of images (uint8 or float in [-1, 1]);
    ``labels`` are needed only when ``d_needs_labels(D)``."""
    if d_needs_labels(D) and labels is None:
        raise ValueError("this conditional discriminator needs class labels to compute features")
    out = []
    dev = next(D.parameters()).device
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size]
        x = x.float().div(127.5).sub(1.0) if x.dtype == torch.uint8 else x.float()
        y = labels[i:i + batch_size].to(dev) if labels is not None and d_needs_labels(D) else None
        f = D.features(x.to(dev), y).float().cpu()
        out.append(torch.nn.functional.normalize(f, dim=1))
    return torch.cat(out) if out else torch.empty(0)


@torch.no_grad()
def nearest_images(sample: torch.Tensor, train_images: torch.Tensor, k: int = 8, space: str = "pixel",
                   D: nn.Module | None = None, train_features: torch.Tensor | None = None,
                   max_images: int | None = 20000, chunk: int = 4096, train_labels: torch.Tensor | None = None,
                   sample_label: int | None = None) -> Neighbours:
    """The ``k`` training images closest to ``sample`` (C, H, W in [-1, 1]) to check memorisation.

    ``space`` "pixel": Euclidean distance between pixels (values in [-1, 1]);
    "d-features": cosine distance between discriminator features (``D.features``), which ignores
    small shifts and colour changes that pixel distance over-weights. Pass precomputed
    ``train_features`` (from d_features over the same subset) to avoid recomputing them. A D whose
    features depend on the label (the conditional MLP) also needs ``train_labels`` and ``sample_label``.
    Large datasets are searched on a fixed subset of ``max_images``.
    """
    total = len(train_images)
    idx = subset_indices(total, max_images)
    if space in ("d", "d-features", "features"):
        if D is None:
            raise ValueError("nearest images in feature space need the discriminator (load the run's checkpoint)")
        if train_features is not None:
            feats = train_features
        else:
            feats = d_features(D, train_images[idx], train_labels[idx] if train_labels is not None else None)
        q_label = torch.tensor([int(sample_label)]) if sample_label is not None else None
        q = d_features(D, sample[None].float(), q_label)[0]
        dist = (1.0 - feats @ q).clamp_min(0)
        space = "d-features"
    elif space == "pixel":
        q = sample.float().flatten()
        parts = []
        for i in range(0, len(idx), chunk):
            x = train_images[idx[i:i + chunk]]
            x = x.float().div(127.5).sub(1.0) if x.dtype == torch.uint8 else x.float()
            parts.append((x.flatten(1) - q).pow(2).sum(1).sqrt())
        dist = torch.cat(parts) if parts else torch.empty(0)
    else:
        raise ValueError(f"unknown space {space!r}; valid: pixel, d-features")
    k = min(int(k), len(dist))
    d, order = torch.topk(dist, k, largest=False)
    chosen = idx[order]
    imgs = train_images[chosen]
    if imgs.dtype != torch.uint8:
        from ..imaging import to_uint8
        imgs = to_uint8(imgs)
    return Neighbours([int(i) for i in chosen], [float(x) for x in d], imgs.clone(), space, int(len(idx)), total)


def image_names(ds, indices: list[int]) -> list[str]:
    """Names for training images by index: the file path relative to the data folder (forward slashes),
    or "<built-in name> #i" for a built-in dataset, whose images have no files."""
    report = getattr(ds, "report", None)
    if report is None or not getattr(report, "images", None):
        return [f"{ds.source} #{int(i)}" for i in indices]
    from ..data.scan import display_path
    root = display_path(report.root)
    out = []
    for i in indices:
        path = display_path(report.images[int(i)].path)
        try:
            rel = os.path.relpath(path, root)
        except ValueError:  # another drive (Windows)
            rel = path
        out.append(rel.replace(os.sep, "/"))
    return out


def load_training_images(g: LoadedGenerator):
    """The run's training set (core.data.ImageDataset) at the generator's resolution and channels.
    Raises DataError (naming the folder) when the data is gone."""
    from ..data import load_dataset
    src = g.dataset.get("source") or g.cfg.data
    return load_dataset(str(src), g.resolution, channels=g.channels)
