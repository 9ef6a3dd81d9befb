"""Random minibatches straight from the decoded uint8 tensor (no DataLoader, no per-step PIL)."""
from __future__ import annotations

from typing import Any

import torch


class TensorBatchSampler:
    """Epoch-wise shuffled batches over an (N, C, R, R) uint8 tensor, resumable and shardable.

    Every rank draws the same permutation from the same seeded generator and takes its own
    stride of it, which is what DistributedSampler does, without a DataLoader.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None, batch_size: int, device: torch.device,
                 seed: int, rank: int = 0, world_size: int = 1, resident: bool | None = None):
        self.device = device
        self.batch_size = batch_size
        self.rank, self.world_size = rank, world_size
        if resident is None:
            resident = _fits_on_device(images, device)
        # Keeping the data on the GPU removes the host->device copy from every step.
        self.images = images.to(device) if resident and device.type != "cpu" else images
        self.labels = labels.to(self.images.device) if labels is not None else None
        self.resident = self.images.device == device
        self.gen = torch.Generator().manual_seed(seed + 7919)
        # A small held-out set D never trains on: D's output on it vs on training images is the
        # overfitting signal (as in ADA). Only for datasets big enough to spare it.
        n = len(self.images)
        n_hold = min(256, n // 20) if n >= 200 else 0
        split = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 104729))
        self.holdout_idx, self.train_idx = split[:n_hold], split[n_hold:]
        self.epoch = 0
        self._perm = self._new_perm()
        self._pos = 0

    def _new_perm(self) -> torch.Tensor:
        perm = self.train_idx[torch.randperm(len(self.train_idx), generator=self.gen)]
        # Drawn on the CPU (a seeded CPU generator: the same order on every device), then moved
        # where the images are once per epoch: slicing a batch's indices off it then costs no
        # host->device copy (from pageable memory, a sync) at every critic step.
        perm = perm[self.rank::self.world_size]
        if self.images.device.type == "cuda":  # pinned: an asynchronous copy, no sync even once per epoch
            return perm.pin_memory().to(self.images.device, non_blocking=True)
        return perm.to(self.images.device)

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Next batch as float in [-1, 1] on the device, plus labels (or None)."""
        return self._fetch(self._take())

    def _take(self) -> torch.Tensor:
        if self._pos + self.batch_size > len(self._perm):
            self._perm = self._new_perm()
            self._pos = 0
            self.epoch += 1
        idx = self._perm[self._pos:self._pos + self.batch_size]
        self._pos += self.batch_size
        return idx

    def holdout(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        """Up to ``n`` held-out images (never trained on), or None for small datasets."""
        if len(self.holdout_idx) == 0:
            return None
        return self._fetch(self.holdout_idx[:n])

    def training_sample(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A fixed set of ``n`` training images (the same every call), for comparisons with held-out ones."""
        return self._fetch(self.train_idx[:n])

    def _fetch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if idx.device != self.images.device:  # held-out / reference sets only; batches are already there
            idx = idx.to(self.images.device)
        x = self.images[idx]
        if x.device != self.device:
            x = x.to(self.device, non_blocking=True)
        x = x.float().mul_(1 / 127.5).sub_(1.0)
        y = self.labels[idx].to(self.device, non_blocking=True) if self.labels is not None else None
        return x, y

    def state_dict(self) -> dict[str, Any]:
        return {"gen": self.gen.get_state(), "perm": self._perm.cpu().clone(), "pos": self._pos, "epoch": self.epoch}

    def load_state_dict(self, s: dict[str, Any]) -> None:
        self.gen.set_state(s["gen"])
        self._perm, self._pos, self.epoch = s["perm"].to(self.images.device), int(s["pos"]), int(s["epoch"])


def _fits_on_device(images: torch.Tensor, device: torch.device) -> bool:
    if device.type != "cuda":
        return device.type == "cpu"
    try:
        free, _ = torch.cuda.mem_get_info(device)
    except Exception:  # pragma: no cover - driver quirks
        return False
    # Leave most of the memory to activations; the uint8 data is small next to them.
    return images.numel() * images.element_size() < 0.25 * free
