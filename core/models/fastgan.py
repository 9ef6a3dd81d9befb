"""FastGAN (Liu et al. 2021): skip-layer-excitation generator and a self-supervised discriminator, for a few hundred images.

G: z -> 4 x 4 -> up-blocks (nearest up, two 3x3 convs with GLU) -> C x R x R; the three highest
resolutions at or above 16 px are gated channel-wise by a low-resolution feature map
(skip-layer excitation, "SLE": the paper's 4->64, 8->128, 16->256 at 256 px).

D: residual down-blocks (strided conv path averaged with an avg-pool path) to 8 x 8, a 4 x 4 conv
head whose 5 x 5 logit map is averaged, and two small decoders used only on real images: one
rebuilds the whole image from the 8 x 8 features, one a random quadrant from the 16 x 16 features.
Their reconstruction loss (mean squared error; the paper's LPIPS needs a download) makes D learn
features that describe the image, not just separate real from fake, which is what keeps it from
memorising a small dataset. ``D(x, y, return_aux=True)`` returns ``(logits, reconstruction_loss)``.

Noise injection (the paper's per-layer noise) is left out: samples from a seed must be the same
image every time, in the studio and in exports.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from core.config import TrainConfig
from core.models.base import Discriminator, Generator, check_labels
from core.models.registry import register

# Channels per resolution as multiples of width/8 (the paper's nfc table with ngf = 64 = 8 x 8).
_G_MULT = {4: 16, 8: 8, 16: 4, 32: 2, 64: 2, 128: 1, 256: 0.5}
_D_MULT = {256: 0.5, 128: 1, 64: 2, 32: 4, 16: 8, 8: 16}
RECON_SIZE_MAX = 64  # decoders rebuild the image at min(R, this): the paper uses 128 at 256-1024 px


def _up(cin: int, cout: int) -> nn.Sequential:
    """Nearest x2, then two 3x3 conv + BatchNorm + GLU (each conv makes 2 x cout channels for the gate)."""
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(cin, cout * 2, 3, 1, 1, bias=False), nn.BatchNorm2d(cout * 2), nn.GLU(dim=1),
        nn.Conv2d(cout, cout * 2, 3, 1, 1, bias=False), nn.BatchNorm2d(cout * 2), nn.GLU(dim=1))


class SkipExcitation(nn.Module):
    """Channel gates for a high-resolution map from a low-resolution one: pool to 4x4, 4x4 conv, SiLU, 1x1 conv, sigmoid."""

    def __init__(self, c_low: int, c_high: int):
        super().__init__()
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Conv2d(c_low, c_high, 4, 1, 0, bias=False),
                                  nn.SiLU(), nn.Conv2d(c_high, c_high, 1, 1, 0, bias=False), nn.Sigmoid())

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        return high * self.gate(low)  # (B, c_high, 1, 1) broadcast over the high map


class FastGANGenerator(Generator):
    """z -> (16w/8) x 4 x 4 -> ... -> C x R x R (tanh), with skip-layer excitation at the top three resolutions >= 16."""

    def __init__(self, latent_dim: int, resolution: int, channels: int, width: int, num_classes: int = 0):
        super().__init__(latent_dim, resolution, channels, num_classes)
        self.sizes = [2 ** i for i in range(2, int(math.log2(resolution)) + 1)]  # 4, 8, ..., R
        ch = {s: max(8, int(width * _G_MULT[s] / 8)) for s in self.sizes}
        self.init = nn.Sequential(nn.ConvTranspose2d(latent_dim, ch[4] * 2, 4, 1, 0, bias=False),
                                  nn.BatchNorm2d(ch[4] * 2), nn.GLU(dim=1))  # ch4 x 4 x 4
        self.ups = nn.ModuleDict({str(s): _up(ch[s // 2], ch[s]) for s in self.sizes[1:]})
        # SLE pairs: each of the top three sizes >= 16 is gated by the map 16x smaller (at least 4x4).
        self.sle_from = {s: max(4, s // 16) for s in [s for s in self.sizes if s >= 16][-3:]}
        self.sle = nn.ModuleDict({str(s): SkipExcitation(ch[lo], ch[s]) for s, lo in self.sle_from.items()})
        self.to_rgb = nn.Conv2d(ch[resolution], channels, 3, 1, 1)
        if num_classes:
            self.label_embed = nn.Embedding(num_classes, latent_dim)

    def generate(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        if y is not None:
            z = z * self.label_embed(y)
        feats = {4: self.init(z[:, :, None, None])}
        for s in self.sizes[1:]:
            h = self.ups[str(s)](feats[s // 2])
            if s in self.sle_from:
                h = self.sle[str(s)](feats[self.sle_from[s]], h)
            feats[s] = h
        return torch.tanh(self.to_rgb(feats[self.resolution]))


class _Down(nn.Module):
    """Halve the size: (strided 4x4 conv, 3x3 conv) averaged with (avg-pool, 1x1 conv), BatchNorm + LeakyReLU, spectral norm."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.main = nn.Sequential(
            spectral_norm(nn.Conv2d(cin, cout, 4, 2, 1, bias=False)), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(cout, cout, 3, 1, 1, bias=False)), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2))
        self.direct = nn.Sequential(nn.AvgPool2d(2), spectral_norm(nn.Conv2d(cin, cout, 1, 1, 0, bias=False)),
                                    nn.BatchNorm2d(cout), nn.LeakyReLU(0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.main(x) + self.direct(x)) / 2


def _decoder(cin: int, channels: int, out_size: int, width: int) -> nn.Sequential:
    """8 x 8 features -> C x out_size x out_size in [-1, 1]: nearest-up blocks with GLU (the paper's SimpleDecoder)."""
    layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(8)]
    c, s = cin, 8
    while s < out_size:
        cout = max(8, width // 2)
        layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, cout * 2, 3, 1, 1, bias=False),
                   nn.BatchNorm2d(cout * 2), nn.GLU(dim=1)]
        c, s = cout, s * 2
    layers += [nn.Conv2d(c, channels, 3, 1, 1), nn.Tanh()]
    return nn.Sequential(*layers)


class FastGANDiscriminator(Discriminator):
    """C x R x R -> ... -> 16 x 16 -> 8 x 8 -> 5 x 5 logits (averaged); decoders on 8 x 8 and a 16 x 16 quadrant."""

    self_supervised = True  # the trainer asks forward(..., return_aux=True) for the reconstruction loss on reals

    def __init__(self, resolution: int, channels: int, width: int, num_classes: int = 0, latent_dim: int = 0):
        super().__init__(resolution, channels, num_classes, latent_dim)
        ch = {s: max(8, int(width * _D_MULT[s] / 8)) for s in _D_MULT}
        self.stem = nn.Sequential(spectral_norm(nn.Conv2d(channels, ch[resolution], 3, 1, 1, bias=False)),
                                  nn.LeakyReLU(0.2))  # ch_R x R x R (first layer never normalised)
        sizes = [2 ** i for i in range(int(math.log2(resolution)), 3, -1)]  # R, R/2, ..., 16
        self.to16 = nn.Sequential(*[_Down(ch[s], ch[s // 2]) for s in sizes if s > 16])  # ch16 x 16 x 16
        self.to8 = _Down(ch[16], ch[8])                                                  # ch8 x 8 x 8
        self.head_conv = nn.Sequential(spectral_norm(nn.Conv2d(ch[8], ch[8], 1, 1, 0, bias=False)),
                                       nn.BatchNorm2d(ch[8]), nn.LeakyReLU(0.2),
                                       spectral_norm(nn.Conv2d(ch[8], 1, 4, 1, 0, bias=False)))  # 1 x 5 x 5
        self.feature_dim = ch[8] * 16
        self.recon_size = min(resolution, RECON_SIZE_MAX)
        self.decode_whole = _decoder(ch[8], channels, self.recon_size, width)
        self.decode_part = _decoder(ch[16], channels, self.recon_size, width)
        if num_classes:
            self.embed = nn.Embedding(num_classes, self.feature_dim)
            nn.init.normal_(self.embed.weight, 0.0, 0.02)

    def _maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h16 = self.to16(self.stem(x))
        return h16, self.to8(h16)

    def trunk(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return self._maps(x)[1]

    def pool(self, h: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(h, 4).flatten(1)

    def head(self, h: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        return self.head_conv(h).mean(dim=(1, 2, 3))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None, return_aux: bool = False):
        self._check_x(x)
        y = check_labels(y, self.num_classes, x.shape[0], "discriminator")
        h16, h8 = self._maps(x)
        feats = self.pool(h8)
        out = self.head(h8, feats)
        if self.embed is not None:
            out = out + (self.embed(y) * feats).sum(dim=1)
        if self.mbd is not None:
            out = out + self.mbd(feats)
        if not return_aux:
            return out
        return out, self.reconstruction_loss(x, h16, h8)

    def reconstruction_loss(self, x: torch.Tensor, h16: torch.Tensor, h8: torch.Tensor) -> torch.Tensor:
        """MSE of the whole image from 8x8 features plus one quadrant from the 16x16 ones, at ``recon_size``."""
        r = self.recon_size
        whole = F.interpolate(x, size=(r, r), mode="area") if x.shape[-1] != r else x
        # The quadrant is drawn on the CPU generator: a Python int for slicing, no device sync.
        q = int(torch.randint(4, (1,)))
        qy, qx = divmod(q, 2)
        half, s = x.shape[-1] // 2, h16.shape[-1] // 2
        part = x[:, :, qy * half:(qy + 1) * half, qx * half:(qx + 1) * half]
        part = F.interpolate(part, size=(r, r), mode="area") if part.shape[-1] > r else (
            F.interpolate(part, size=(r, r), mode="nearest") if part.shape[-1] < r else part)
        rec_whole = self.decode_whole(h8)
        rec_part = self.decode_part(h16[:, :, qy * s:(qy + 1) * s, qx * s:(qx + 1) * s])
        return F.mse_loss(rec_whole.float(), whole.float()) + F.mse_loss(rec_part.float(), part.float())


def _init(m: nn.Module) -> None:
    # The paper's init: N(0, 0.02) convs, N(1, 0.02) BatchNorm scales.
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        w = m.weight_orig if hasattr(m, "weight_orig") else m.weight
        nn.init.normal_(w, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


@register("fastgan")
def build_fastgan(cfg: TrainConfig, channels: int, num_classes: int) -> tuple[nn.Module, nn.Module]:
    g = FastGANGenerator(cfg.latent_dim, cfg.resolution, channels, cfg.g_width, num_classes)
    d = FastGANDiscriminator(cfg.resolution, channels, cfg.d_width, num_classes, cfg.latent_dim)
    g.apply(_init)
    d.apply(_init)
    return g, d
