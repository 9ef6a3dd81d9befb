"""Sliced Wasserstein distance on a Laplacian pyramid (Karras et al. 2018, ProGAN): needs no downloaded weights."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

PATCH = 7                 # 7x7 neighbourhoods, as in the paper
MIN_LEVEL_RES = 16        # the coarsest pyramid level is 16x16, as in the paper
DESCRIPTORS_PER_IMAGE = 32  # the paper draws 128 per image from 16k images; measured noise at n=512 stays ~1 %
N_PROJECTIONS = 256       # random directions per level (the paper: 4 repeats x 128); sorting dominates the cost
SCALE = 1e3               # reported x10^3, like the paper's tables

# 5-tap binomial filter, the classic Burt & Adelson pyramid kernel.
_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def _blur(x: torch.Tensor) -> torch.Tensor:
    c = x.shape[1]
    k = (_BINOMIAL[:, None] * _BINOMIAL[None, :]).to(x)[None, None].repeat(c, 1, 1, 1)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), k, groups=c)


def laplacian_pyramid(x: torch.Tensor, min_res: int = MIN_LEVEL_RES) -> list[torch.Tensor]:
    """Levels from finest to coarsest: band-pass details at each scale, then the low-pass residual."""
    levels = []
    cur = x
    while cur.shape[-1] // 2 >= min_res:
        down = _blur(cur)[..., ::2, ::2]
        up = F.interpolate(down, size=cur.shape[-2:], mode="bilinear", align_corners=False)
        levels.append(cur - _blur(up))
        cur = down
    levels.append(cur)
    return levels


def level_resolutions(resolution: int, min_res: int = MIN_LEVEL_RES) -> list[int]:
    res = [resolution]
    while res[-1] // 2 >= min_res:
        res.append(res[-1] // 2)
    return res


def _to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] or float [-1, 1] -> float32 [-1, 1]; both sets must share a scale."""
    if images.dtype == torch.uint8:
        return images.float().div(127.5).sub(1.0)
    return images.float()


def level_shapes(h: int, w: int, min_res: int = MIN_LEVEL_RES) -> list[tuple[int, int]]:
    """(H, W) of each laplacian_pyramid level, known without building it (each step halves, rounding up)."""
    out = []
    while w // 2 >= min_res:
        out.append((h, w))
        h, w = (h + 1) // 2, (w + 1) // 2
    out.append((h, w))
    return out


class DescriptorStream:
    """extract_descriptors fed in batches of any size: ``add(images)`` in order, then ``finish()``.

    Positions are drawn per block of ``block`` images (the last one smaller), per level, in the order the
    one-shot extraction always drew them; only the pyramids of the batch in hand exist at once. So the
    descriptors, and every SWD built on them, are the same whatever the batch size, while memory holds
    one batch's pyramids plus the descriptors (never the images). ``total`` must be known up front: the
    last block's draws are shaped by its size.
    """

    def __init__(self, total: int, per_image: int = DESCRIPTORS_PER_IMAGE,
                 generator: torch.Generator | None = None, block: int = 256, min_res: int = MIN_LEVEL_RES):
        self.total, self.per_image, self.block, self.min_res = int(total), per_image, block, min_res
        self.g = generator or torch.Generator().manual_seed(0)
        self.seen = 0
        self._pos: list[tuple[torch.Tensor, torch.Tensor, int]] = []  # this block's (ys, xs, k) per level
        self._start = 0  # index of the current block's first image
        self._parts: list[list[torch.Tensor]] = []

    def _draw(self, h: int, w: int) -> None:
        n = min(self.block, self.total - self.seen)
        self._pos = []
        for lh, lw in level_shapes(h, w, self.min_res):
            k = PATCH if min(lh, lw) >= PATCH else min(lh, lw)
            # Drawn on the CPU from our own generator: reproducible on any device.
            ys = torch.randint(0, lh - k + 1, (n, self.per_image), generator=self.g)
            xs = torch.randint(0, lw - k + 1, (n, self.per_image), generator=self.g)
            self._pos.append((ys, xs, k))
        self._start = self.seen

    def add(self, images: torch.Tensor) -> None:
        if self.seen + len(images) > self.total:
            raise ValueError(f"more than the {self.total} images this stream was made for")
        while len(images):
            if not self._pos or self.seen == self._start + len(self._pos[0][0]):
                self._draw(images.shape[-2], images.shape[-1])
            lo = self.seen - self._start
            take = min(len(images), len(self._pos[0][0]) - lo)
            self._extract(images[:take], lo)
            self.seen += take
            images = images[take:]

    def _extract(self, images: torch.Tensor, lo: int) -> None:
        x = _to_float(images)
        n = len(x)
        for li, lev in enumerate(laplacian_pyramid(x, self.min_res)):
            ys_all, xs_all, k = self._pos[li]
            ys, xs = ys_all[lo:lo + n].to(lev.device), xs_all[lo:lo + n].to(lev.device)
            off = torch.arange(k, device=lev.device)
            yy = (ys[..., None, None] + off[:, None]).expand(n, self.per_image, k, k)
            xx = (xs[..., None, None] + off[None, :]).expand(n, self.per_image, k, k)
            nn_ = torch.arange(n, device=lev.device)[:, None, None, None].expand_as(yy)
            patches = lev.permute(0, 2, 3, 1)[nn_, yy, xx]           # N x D x k x k x C
            if len(self._parts) <= li:
                self._parts.append([])
            self._parts[li].append(patches.reshape(n * self.per_image, -1))

    def finish(self) -> list[torch.Tensor]:
        """One (total*per_image, C*k*k) tensor per level, finest first."""
        if self.seen != self.total:
            raise ValueError(f"{self.seen} images were added to a stream made for {self.total}")
        out = []
        while self._parts:  # one level at a time: its parts are freed as its tensor is made
            out.append(torch.cat(self._parts.pop(0)))
        return out


def extract_descriptors(images: torch.Tensor, per_image: int = DESCRIPTORS_PER_IMAGE,
                        generator: torch.Generator | None = None, batch: int = 256,
                        min_res: int = MIN_LEVEL_RES) -> list[torch.Tensor]:
    """Random 7x7 neighbourhoods from every pyramid level: one (N*per_image, C*49) tensor per level."""
    s = DescriptorStream(len(images), per_image, generator, batch, min_res)
    for i in range(0, len(images), batch):
        s.add(images[i:i + batch])
    return s.finish()


@dataclass
class RealDescriptors:
    """The reference side of SWD, cacheable: per-level descriptors and their per-channel statistics."""
    levels: list[torch.Tensor]
    mean: list[torch.Tensor]   # per level, (C,)
    std: list[torch.Tensor]
    channels: int

    def to(self, device) -> RealDescriptors:
        return RealDescriptors([d.to(device) for d in self.levels], [m.to(device) for m in self.mean],
                               [s.to(device) for s in self.std], self.channels)

    def state(self) -> dict:
        # float16 halves the cache file; SWD differences are far above its precision.
        return {"levels": [d.half() for d in self.levels], "mean": self.mean, "std": self.std,
                "channels": self.channels}

    @classmethod
    def from_state(cls, s: dict) -> RealDescriptors:
        # Levels stay float16 (the cache's copy, shared, not duplicated in float32): swd widens one level
        # at a time, to the same values a float32 copy of them would hold.
        return cls(list(s["levels"]), list(s["mean"]), list(s["std"]), int(s["channels"]))

    @classmethod
    def from_levels(cls, levels: list[torch.Tensor], channels: int) -> RealDescriptors:
        stats = [_channel_stats(d, channels) for d in levels]
        return cls(levels, [m for m, _ in stats], [s for _, s in stats], channels)


def _channel_stats(desc: torch.Tensor, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    per_ch = desc.reshape(desc.shape[0], -1, channels)  # descriptors are laid out (..., C) last
    return per_ch.mean(dim=(0, 1)), per_ch.std(dim=(0, 1)).clamp_min(1e-8)


def _normalise(desc: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, channels: int) -> torch.Tensor:
    return ((desc.reshape(desc.shape[0], -1, channels) - mean) / std).reshape(desc.shape[0], -1)


def real_descriptors(images: torch.Tensor, seed: int = 0, per_image: int = DESCRIPTORS_PER_IMAGE) -> RealDescriptors:
    levels = extract_descriptors(images, per_image, torch.Generator().manual_seed(seed))
    return RealDescriptors.from_levels(levels, images.shape[1])


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, n_proj: int = N_PROJECTIONS,
                       generator: torch.Generator | None = None, chunk: int = 128) -> float:
    """SWD between two equally sized point clouds: mean over random unit directions of the 1-D
    Wasserstein-1 distance between the projected, sorted points."""
    g = generator or torch.Generator().manual_seed(0)
    n = min(len(a), len(b))
    if len(a) != n:
        a = a[torch.randperm(len(a), generator=g)[:n].to(a.device)]
    if len(b) != n:
        b = b[torch.randperm(len(b), generator=g)[:n].to(b.device)]
    total = 0.0
    for done in range(0, n_proj, chunk):  # chunks keep the projected matrices small in memory
        p = min(chunk, n_proj - done)
        dirs = torch.randn(a.shape[1], p, generator=g).to(a.device)
        dirs = dirs / dirs.norm(dim=0, keepdim=True)
        total += float((_sorted_rows(a @ dirs) - _sorted_rows(b @ dirs)).abs().mean(dim=1).sum())
    return total / n_proj


def _sorted_rows(proj: torch.Tensor) -> torch.Tensor:
    """Each projection's values sorted (P x N). numpy's SIMD sort is ~3x faster than torch's on a CPU."""
    if proj.device.type == "cpu":
        return torch.from_numpy(np.sort(proj.t().numpy(), axis=1))
    return torch.sort(proj.t(), dim=1).values


def swd(real: torch.Tensor | RealDescriptors, fake: torch.Tensor, seed: int = 0,
        per_image: int = DESCRIPTORS_PER_IMAGE, n_proj: int = N_PROJECTIONS) -> dict[str, float]:
    """SWD (x10^3) per pyramid level and their average ("avg"), fake vs real images.

    ``real`` is an image tensor or precomputed ``RealDescriptors`` (cached statistics).
    Images are uint8 [0, 255] or float [-1, 1], N x C x R x R. Both sets are normalised per
    channel with the *real* set's mean/std (the paper normalises each set by its own), so a
    global colour or brightness shift also counts as a difference.
    """
    ref = real if isinstance(real, RealDescriptors) else real_descriptors(real, seed, per_image)
    # The same position stream as the real side (common random numbers): identical sets give exactly 0
    # and the estimate's variance drops; positions carry no information about either set.
    fake_levels = extract_descriptors(fake, per_image, torch.Generator().manual_seed(seed))
    return swd_from_descriptors(ref, fake_levels, fake.shape[-1], fake.shape[1], seed, n_proj)


def swd_from_descriptors(ref: RealDescriptors, fake_levels: list[torch.Tensor], resolution: int, channels: int,
                         seed: int = 0, n_proj: int = N_PROJECTIONS) -> dict[str, float]:
    """swd() from generated descriptors already extracted (a DescriptorStream seeded with ``seed``)."""
    if len(fake_levels) != len(ref.levels) or channels != ref.channels:
        raise ValueError(f"real and generated images differ in size or channels ({len(ref.levels)} vs "
                         f"{len(fake_levels)} pyramid levels, {ref.channels} vs {channels} channels)")
    dev = fake_levels[0].device
    g = torch.Generator().manual_seed(seed + 2)
    out: dict[str, float] = {}
    res = level_resolutions(resolution)
    for r, d_real, d_fake, m, s in zip(res, ref.levels, fake_levels, ref.mean, ref.std):
        m, s = m.to(dev), s.to(dev)
        a = _normalise(d_real.to(dev).float(), m, s, ref.channels)
        b = _normalise(d_fake, m, s, ref.channels)
        out[f"{r}px"] = SCALE * sliced_wasserstein(a, b, n_proj, g)
    out["avg"] = sum(out.values()) / len(out)
    return out
