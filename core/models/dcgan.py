"""DCGAN (Radford et al. 2015): transposed-conv generator, strided-conv discriminator, any resolution 16-256."""
from __future__ import annotations

import math

import torch
from torch import nn

from core.config import TrainConfig
from core.models.base import Discriminator, Generator
from core.models.layers import MinibatchStdDev, SelfAttention, add_spectral_norm, dcgan_init, norm2d, resolve_d_norm
from core.models.progressive import ProgressiveDiscriminator, ProgressiveGenerator
from core.models.registry import register

# Widths stop doubling at 8x the base width, as in the 64 px original (ngf * 8 at 4 x 4);
# higher resolutions add blocks at the wide end instead of ever-wider layers.
_MAX_MULT = 8


def _mult(i: int) -> int:
    return min(2 ** i, _MAX_MULT)


class DCGANGenerator(Generator):
    """z -> (width*8) x 4 x 4 -> ... -> width x R/2 x R/2 -> C x R x R (tanh).

    At 64 px, width 64, latent 100 this is layer for layer the PyTorch DCGAN tutorial's netG
    (``self.main`` even has the same indices, so its state dicts load).
    """

    def __init__(self, latent_dim: int, resolution: int, channels: int, width: int, num_classes: int = 0,
                 attention: int = 0):
        super().__init__(latent_dim, resolution, channels, num_classes)
        k = int(math.log2(resolution)) - 3  # middle up-blocks between 4 x 4 and the last layer
        ch = width * _mult(k)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, ch, 4, 1, 0, bias=False),  # ch x 4 x 4
            nn.BatchNorm2d(ch), nn.ReLU(True),
        ]
        for i in range(k):
            out = width * _mult(k - 1 - i)
            layers += [nn.ConvTranspose2d(ch, out, 4, 2, 1, bias=False),  # out x 2^(i+3) x 2^(i+3)
                       nn.BatchNorm2d(out), nn.ReLU(True)]
            if attention == 2 ** (i + 3):  # SAGAN: attention over this size's feature map (absent by default,
                layers.append(SelfAttention(out))  # so the tutorial net's indices are unchanged)
            ch = out
        layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1, bias=False), nn.Tanh()]  # C x R x R
        self.main = nn.Sequential(*layers)
        if num_classes:
            # Class embedding multiplied into z (as in the PyTorch conditional GAN examples).
            self.label_embed = nn.Embedding(num_classes, latent_dim)

    def generate(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        if y is not None:
            z = z * self.label_embed(y)
        return self.main(z[:, :, None, None])


class DCGANDiscriminator(Discriminator):
    """C x R x R -> width x R/2 x R/2 -> ... -> (width*8) x 4 x 4 -> 1 logit (4x4 conv, no sigmoid).

    The first layer is never normalised (Radford et al.). Features are the flattened 4 x 4 map.
    """

    def __init__(self, resolution: int, channels: int, width: int, norm: str, minibatch_std: bool,
                 num_classes: int = 0, latent_dim: int = 0, attention: int = 0):
        super().__init__(resolution, channels, num_classes, latent_dim)
        k = int(math.log2(resolution)) - 3
        # With BatchNorm a conv bias is redundant (the classic net has none); without any norm it is needed.
        bias = norm != "batch"
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1, bias=bias),  # width x R/2 x R/2
                                   nn.LeakyReLU(0.2, inplace=True)]
        ch = width
        if attention == resolution // 2:
            layers.append(SelfAttention(width))
        for i in range(k):
            out = width * _mult(i + 1)
            layers += [nn.Conv2d(ch, out, 4, 2, 1, bias=norm == "none"),  # out x R/2^(i+2) x R/2^(i+2)
                       norm2d(norm, out), nn.LeakyReLU(0.2, inplace=True)]
            if attention == resolution >> (i + 2):
                layers.append(SelfAttention(out))
            ch = out
        self.main = nn.Sequential(*layers)  # ch x 4 x 4
        self.feature_dim = ch * 16
        self.mbstd = MinibatchStdDev() if minibatch_std else None
        self.final = nn.Conv2d(ch + int(minibatch_std), 1, 4, 1, 0, bias=bias)  # 1 x 1 x 1
        if num_classes:
            self.embed = nn.Embedding(num_classes, self.feature_dim)

    def trunk(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return self.main(x)

    def head(self, h: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        if self.mbstd is not None:
            h = self.mbstd(h)  # (ch + 1) x 4 x 4
        return self.final(h).flatten()


class _Stem(nn.Module):
    """z (times the class embedding) -> ch x 4 x 4, as the first layer of DCGANGenerator."""

    def __init__(self, latent_dim: int, ch: int, num_classes: int):
        super().__init__()
        self.main = nn.Sequential(nn.ConvTranspose2d(latent_dim, ch, 4, 1, 0, bias=False), nn.BatchNorm2d(ch), nn.ReLU(True))
        self.label_embed = nn.Embedding(num_classes, latent_dim) if num_classes else None

    def forward(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        if self.label_embed is not None:
            z = z * self.label_embed(y)
        return self.main(z[:, :, None, None])


class _Up(nn.Sequential):
    """ConvTranspose 4x4 stride 2, BatchNorm, ReLU: one doubling (labels unused)."""

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return super().forward(x)


def _prog_widths(resolution: int, width: int) -> dict[int, int]:
    """Channels at each size 4..R for progressive nets: width at R and R/2, doubling coarser (capped at 8x)."""
    n = int(math.log2(resolution))
    return {2 ** k: width * _mult(max(0, n - k - 1)) for k in range(2, n + 1)}


class ProgDCGANDiscriminator(ProgressiveDiscriminator):
    """Progressive DCGAN D: 1x1 from-RGB convs, strided 4x4 conv blocks, the DCGAN 4x4 head (minibatch std)."""

    def __init__(self, cfg: TrainConfig, channels: int, num_classes: int):
        ch, norm, start = _prog_widths(cfg.resolution, cfg.d_width), resolve_d_norm(cfg), cfg.progressive_start
        bias = norm != "batch"
        from_rgb = nn.ModuleDict({str(r): nn.Sequential(nn.Conv2d(channels, c, 1), nn.LeakyReLU(0.2, inplace=True))
                                  for r, c in ch.items() if r >= start})
        blocks = nn.ModuleList(nn.Sequential(nn.Conv2d(ch[2 * r], ch[r], 4, 2, 1, bias=norm == "none"), norm2d(norm, ch[r]),
                                             nn.LeakyReLU(0.2, inplace=True)) for r in sorted(ch)[:-1])
        super().__init__(cfg.resolution, channels, num_classes, cfg.latent_dim, start, from_rgb, blocks)
        self.feature_dim = ch[4] * 16
        self.mbstd = MinibatchStdDev() if cfg.minibatch_std else None
        self.final = nn.Conv2d(ch[4] + int(cfg.minibatch_std), 1, 4, 1, 0, bias=bias)
        if num_classes:
            self.embed = nn.Embedding(num_classes, self.feature_dim)

    head = DCGANDiscriminator.head


def _build_progressive(cfg: TrainConfig, channels: int, num_classes: int) -> tuple[nn.Module, nn.Module]:
    ch, start = _prog_widths(cfg.resolution, cfg.g_width), cfg.progressive_start
    blocks = nn.ModuleList(_Up(nn.ConvTranspose2d(ch[r], ch[2 * r], 4, 2, 1, bias=False), nn.BatchNorm2d(ch[2 * r]),
                               nn.ReLU(True)) for r in sorted(ch)[:-1])
    to_rgb = nn.ModuleDict({str(r): nn.Sequential(nn.Conv2d(c, channels, 1), nn.Tanh()) for r, c in ch.items() if r >= start})
    g = ProgressiveGenerator(cfg.latent_dim, cfg.resolution, channels, num_classes, start,
                             _Stem(cfg.latent_dim, ch[4], num_classes), blocks, to_rgb)
    return g, ProgDCGANDiscriminator(cfg, channels, num_classes)


@register("dcgan")
def build_dcgan(cfg: TrainConfig, channels: int, num_classes: int) -> tuple[nn.Module, nn.Module]:
    if cfg.progressive:  # ProGAN-style growing over the same layer types (core/models/progressive.py)
        g, d = _build_progressive(cfg, channels, num_classes)
    else:
        g = DCGANGenerator(cfg.latent_dim, cfg.resolution, channels, cfg.g_width, num_classes, cfg.attention)
        d = DCGANDiscriminator(cfg.resolution, channels, cfg.d_width, resolve_d_norm(cfg), cfg.minibatch_std,
                               num_classes, cfg.latent_dim, cfg.attention)
    g.apply(dcgan_init)
    d.apply(dcgan_init)
    if d.embed is not None:
        # Small like the convs: a unit-variance embedding over thousands of features would swamp the logit.
        nn.init.normal_(d.embed.weight, 0.0, 0.02)
    if cfg.spectral_norm:
        add_spectral_norm(d)  # after init, so SN normalises the initialised weights
    return g, d
