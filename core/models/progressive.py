"""Progressive growing (Karras et al. 2018, ProGAN): stage schedule, fade-in G/D bases and the real-image blend."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from core.models.base import Discriminator, Generator
from core.models.layers import upsample2x


def stage_at(images: int, start: int, resolution: int, fade: int, stable: int) -> tuple[int, float]:
    """(resolution, alpha) after ``images`` training images: a pure function, so a resume lands exactly.

    ``start`` px is trained stable for ``stable`` images; then each doubling fades in over ``fade``
    images (alpha 0 -> 1) and is trained stable for ``stable`` more; the target resolution stays.
    """
    t = max(0, int(images)) - stable
    res = start
    if t < 0:
        return res, 1.0
    while res < resolution:
        res *= 2
        if t < fade:
            return res, t / fade
        t -= fade + stable
        if t < 0:
            return res, 1.0
    return resolution, 1.0


def blend_reals(x: torch.Tensor, res: int, alpha: float, start: int) -> torch.Tensor:
    """What D is shown of real images at a stage: avg-pooled to ``res``; while a stage fades in, lerped
    from the pooled-again-and-upsampled half resolution by alpha (ProGAN's process_reals); then
    nearest-upsampled back to the full size, which D's avg-pool undoes exactly."""
    full = x.shape[-1]
    if res < full:
        x = F.avg_pool2d(x, full // res)
    if alpha < 1.0 and res > start:
        x = (1.0 - alpha) * upsample2x(F.avg_pool2d(x, 2)) + alpha * x
    if res < full:
        x = F.interpolate(x, scale_factor=full // res, mode="nearest")
    return x


class ProgressiveGenerator(Generator):
    """stem(z, y) -> 4 x 4 features; ``blocks[i]`` doubles them; ``to_rgb[str(r)]`` makes an image at r px.

    ``res`` and ``alpha`` (set per step by :class:`Progression`; default: the full net, alpha 1) pick the
    stage. While fading in: out = (1 - alpha) * up(to_rgb_{r/2}(h_{r/2})) + alpha * to_rgb_r(block(h_{r/2})).
    The output is always nearest-upsampled to the full resolution, so every consumer sees full-size images.
    """

    def __init__(self, latent_dim: int, resolution: int, channels: int, num_classes: int, start: int,
                 stem: nn.Module, blocks: nn.ModuleList, to_rgb: nn.ModuleDict):
        super().__init__(latent_dim, resolution, channels, num_classes)
        self.start, self.res, self.alpha = start, resolution, 1.0
        self.stem, self.blocks, self.to_rgb = stem, blocks, to_rgb
        # (res, alpha) in the state dict too, so a checkpoint or export of a run that has not finished growing
        # is loaded at the stage its samples showed; forward reads the Python copies (no host sync).
        self.register_buffer("stage", torch.tensor([float(resolution), 1.0]))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        res, alpha = self.stage.tolist()
        self.res, self.alpha = int(res), float(alpha)

    def generate(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        h, r, prev = self.stem(z, y), 4, None
        for block in self.blocks[:int(math.log2(self.res)) - 2]:
            prev, h, r = h, block(h, y), r * 2
        out = self.to_rgb[str(r)](h)
        if self.alpha < 1.0 and r > self.start:
            out = (1.0 - self.alpha) * upsample2x(self.to_rgb[str(r // 2)](prev)) + self.alpha * out
        if r < self.resolution:
            out = F.interpolate(out, scale_factor=self.resolution // r, mode="nearest")
        return out


class ProgressiveDiscriminator(Discriminator):
    """Mirror of the generator: x (full size) -> avg-pool to r -> from_rgb[str(r)] -> ``blocks`` halving to
    4 x 4 (``blocks[i]`` maps 2^(i+3) px to 2^(i+2) px) -> ``top``. While fading in, the first block's output
    is lerped with from_rgb_{r/2}(avg-pool(x)) by alpha. Subclasses give ``top``, ``pool`` and ``head``."""

    def __init__(self, resolution: int, channels: int, num_classes: int, latent_dim: int, start: int,
                 from_rgb: nn.ModuleDict, blocks: nn.ModuleList):
        super().__init__(resolution, channels, num_classes, latent_dim)
        self.start, self.res, self.alpha = start, resolution, 1.0
        self.from_rgb, self.blocks = from_rgb, blocks

    def top(self, h: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return h

    def trunk(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        r = self.res
        if r < self.resolution:
            x = F.avg_pool2d(x, self.resolution // r)
        h = self.from_rgb[str(r)](x)
        i = int(math.log2(r)) - 3  # the block taking r px to r/2 px
        if i >= 0:
            h = self.blocks[i](h)
            if self.alpha < 1.0 and r > self.start:
                h = (1.0 - self.alpha) * self.from_rgb[str(r // 2)](F.avg_pool2d(x, 2)) + self.alpha * h
            for j in range(i - 1, -1, -1):
                h = self.blocks[j](h)
        return self.top(h, y)


PROGRESSIVE = (ProgressiveGenerator, ProgressiveDiscriminator)


class Progression:
    """The trainer's hook: sets (res, alpha) on every progressive net from the images seen, blends the
    reals, and reports ``prog/stage`` (px) and ``prog/alpha`` for the metrics."""

    def __init__(self, cfg) -> None:
        self.start, self.resolution = cfg.progressive_start, cfg.resolution
        self.fade = cfg.fade_images
        self.stable = cfg.stable_images if cfg.stable_images > 0 else cfg.fade_images
        self.res, self.alpha = self.start, 1.0

    def apply(self, images: int, *nets: nn.Module | None) -> None:
        self.res, self.alpha = stage_at(images, self.start, self.resolution, self.fade, self.stable)
        set_stage(self.res, self.alpha, *nets)

    def reals(self, x: torch.Tensor) -> torch.Tensor:
        return blend_reals(x, self.res, self.alpha, self.start)

    def metrics(self) -> dict[str, torch.Tensor]:
        return {"prog/stage": torch.tensor(float(self.res)), "prog/alpha": torch.tensor(self.alpha)}


def set_stage(res: int, alpha: float, *nets: nn.Module | None) -> None:
    """Put every progressive G/D inside ``nets`` (DDP, packing and EMA copies included) at (res, alpha)."""
    for net in nets:
        for m in (net.modules() if net is not None else ()):
            if isinstance(m, PROGRESSIVE) and (m.res, m.alpha) != (res, alpha):
                m.res, m.alpha = res, alpha
                if isinstance(m, ProgressiveGenerator):
                    m.stage.copy_(torch.tensor([float(res), alpha]))
