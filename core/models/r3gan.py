"""R3GAN's normalisation-free residual G and D (Huang et al. 2024): grouped inverted bottlenecks, fix-up init, lowpass resampling.

Both nets are stages of residual blocks, one stage per resolution from 4 x 4 to R x R, with no
normalisation layer anywhere (no BatchNorm, no spectral norm, no equalised learning rate): what
keeps them trainable is the initialisation. Each block is x + P(act(C(act(E(x))))) with E a 1x1
expansion to twice the width, C a grouped 3x3 conv (16 channels per group) and P a 1x1
projection back. P starts at zero, so every block is the identity at initialisation, and E and C
are scaled by L^(-1/4) (L = blocks in the net; L^(-1/(2m-2)) for m = 3 layers per branch) so the
variance a branch adds, once P has learned anything, does not grow with the depth. Activations are
leaky ReLU 0.2 with a learned bias (the conv biases before them); the other layers have none.

G: a learned 4 x 4 basis modulated channel-wise by a linear map of z, stages upsampled
bilinearly (a 1x1 conv first where the width changes), a 1x1 conv to the image. The output is
linear while training (as in the paper: no tanh) and clamped to [-1, 1] in eval mode, where every
sample, grid and export is made (the same rule as arch=stylegan2).

D: the mirror. A 1x1 conv from the image, stages downsampled with the [1, 3, 3, 1] lowpass filter
(a fixed depthwise conv, stride 2; a 1x1 conv after it where the width changes), then a depthwise
4 x 4 conv (the "discriminative basis") to one feature vector and a linear head. Labels enter G
as an embedding concatenated to z and D by projection. Widths per stage follow resnet-sn's table
(4 x width at the coarse end, width at full size) so the two families cost comparable amounts.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from core.config import TrainConfig
from core.models.base import Discriminator, Generator
from core.models.registry import register

_MAX_MULT = 4
BLOCKS_PER_STAGE = 2  # the paper's 2 per stage at every resolution
EXPANSION = 2  # inverted bottleneck: the 3x3 conv works at twice the block's width
GROUP_CHANNELS = 16  # channels per group of the 3x3 conv (the paper's 1536 / 96 at CIFAR-10)
SLOPE = 0.2
ACT_GAIN = math.sqrt(2 / (1 + SLOPE ** 2))  # keeps the variance through a leaky ReLU (He et al.)


def stage_widths(resolution: int, width: int) -> dict[int, int]:
    """Channels at each resolution 4 .. R: width x min(4, R / r), as in resnet-sn."""
    return {2 ** k: width * min(_MAX_MULT, resolution // 2 ** k) for k in range(2, int(math.log2(resolution)) + 1)}


def msr_init_(layer: nn.Module, gain: float = 1.0) -> nn.Module:
    """N(0, gain^2 / fan_in) weights, zero bias (He init with an explicit gain; gain 0 = zeros)."""
    w = layer.weight
    nn.init.normal_(w, 0.0, gain / math.sqrt(w[0].numel()))
    if getattr(layer, "bias", None) is not None:
        nn.init.zeros_(layer.bias)
    return layer


def groups_for(channels: int) -> int:
    """Groups of about GROUP_CHANNELS channels that divide ``channels`` (1 for narrow layers)."""
    g = max(1, channels // GROUP_CHANNELS)
    while channels % g:
        g -= 1
    return g


class ResidualBlock(nn.Module):
    """x + project(act(grouped3x3(act(expand(x))))); identity at init (project is zero)."""

    def __init__(self, ch: int, total_blocks: int):
        super().__init__()
        e = ch * EXPANSION
        gain = ACT_GAIN * total_blocks ** -0.25  # L^(-1/(2m-2)) with m = 3 layers in the branch
        self.expand = msr_init_(nn.Conv2d(ch, e, 1), gain)  # the biases are the activations' biases
        self.conv = msr_init_(nn.Conv2d(e, e, 3, 1, 1, groups=groups_for(e)), gain)
        self.project = msr_init_(nn.Conv2d(e, ch, 1, bias=False), 0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.expand(x), SLOPE)
        h = F.leaky_relu(self.conv(h), SLOPE)
        return x + self.project(h)


class LowpassDown(nn.Module):
    """2x downsampling with the separable [1, 3, 3, 1] / 8 filter (the transpose of bilinear 2x upsampling):
    a fixed depthwise conv, stride 2, zero padding 1. Less aliasing than a 2 x 2 average."""

    def __init__(self, channels: int):
        super().__init__()
        k = torch.tensor([1.0, 3.0, 3.0, 1.0])
        k = torch.outer(k, k) / 64.0
        # Not persistent: a constant, so checkpoints and transfers carry weights only.
        self.register_buffer("kernel", k.expand(channels, 1, 4, 4).contiguous(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.kernel.to(x.dtype), stride=2, padding=1, groups=self.kernel.shape[0])


def _stage(ch: int, total_blocks: int) -> list[nn.Module]:
    return [ResidualBlock(ch, total_blocks) for _ in range(BLOCKS_PER_STAGE)]


class R3GANGenerator(Generator):
    """z -> basis (4 x 4) * linear(z) -> [blocks, bilinear up 2x] ... -> blocks -> 1x1 conv -> C x R x R."""

    def __init__(self, latent_dim: int, resolution: int, channels: int, width: int, num_classes: int = 0):
        super().__init__(latent_dim, resolution, channels, num_classes)
        ch = stage_widths(resolution, width)
        total = BLOCKS_PER_STAGE * len(ch)
        self.embed = None
        if num_classes:  # R3GAN: a class embedding as wide as z, concatenated to it
            self.embed = nn.Embedding(num_classes, latent_dim)
            nn.init.normal_(self.embed.weight, 0.0, 1.0 / math.sqrt(num_classes))  # a one-hot linear map's MSR init
        self.basis = nn.Parameter(torch.randn(ch[4], 4, 4))
        self.modulate = msr_init_(nn.Linear(latent_dim * (2 if num_classes else 1), ch[4], bias=False))
        layers: list[nn.Module] = _stage(ch[4], total)
        for r in sorted(ch)[1:]:
            if ch[r // 2] != ch[r]:  # 1x1 conv before the upsampling: 4x cheaper than after it
                layers.append(msr_init_(nn.Conv2d(ch[r // 2], ch[r], 1, bias=False)))
            layers.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
            layers += _stage(ch[r], total)
        self.layers = nn.Sequential(*layers)
        self.to_image = msr_init_(nn.Conv2d(ch[resolution], channels, 1, bias=False))

    def generate(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(y)], dim=1)
        h = self.basis.unsqueeze(0) * self.modulate(z)[:, :, None, None]  # ch4 x 4 x 4
        img = self.to_image(self.layers(h))
        return img if self.training else img.clamp(-1, 1)


class R3GANDiscriminator(Discriminator):
    """C x R x R -> 1x1 conv -> [blocks, lowpass down 2x] ... -> blocks (4 x 4) -> depthwise 4x4 -> linear.

    Features are the (B, 4w) vector after the depthwise 4x4 conv; labels enter by projection."""

    def __init__(self, resolution: int, channels: int, width: int, num_classes: int = 0, latent_dim: int = 0):
        super().__init__(resolution, channels, num_classes, latent_dim)
        ch = stage_widths(resolution, width)
        total = BLOCKS_PER_STAGE * len(ch)
        self.from_image = msr_init_(nn.Conv2d(channels, ch[resolution], 1, bias=False))
        layers: list[nn.Module] = []
        for r in sorted(ch, reverse=True)[:-1]:
            layers += _stage(ch[r], total)
            layers.append(LowpassDown(ch[r]))
            if ch[r // 2] != ch[r]:  # 1x1 conv after the downsampling: 4x cheaper than before it
                layers.append(msr_init_(nn.Conv2d(ch[r], ch[r // 2], 1, bias=False)))
        layers += _stage(ch[4], total)
        self.layers = nn.Sequential(*layers)
        self.basis = msr_init_(nn.Conv2d(ch[4], ch[4], 4, groups=ch[4], bias=False))  # 4 x 4 -> 1 x 1
        self.feature_dim = ch[4]
        self.linear = msr_init_(nn.Linear(ch[4], 1, bias=False))
        if num_classes:
            self.embed = nn.Embedding(num_classes, ch[4])
            nn.init.normal_(self.embed.weight, 0.0, 1.0 / math.sqrt(ch[4]))

    def trunk(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return self.basis(self.layers(self.from_image(x)))  # (B, 4w, 1, 1)

    def head(self, h: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        return self.linear(feats).flatten()


@register("r3gan")
def build_r3gan(cfg: TrainConfig, channels: int, num_classes: int) -> tuple[nn.Module, nn.Module]:
    # d_norm, spectral_norm and minibatch_std do not apply (core/field_use.py says so): the paper's point
    # is a net without normalisation or tricks, its stability coming from the loss (rpgan + R1 + R2).
    g = R3GANGenerator(cfg.latent_dim, cfg.resolution, channels, cfg.g_width, num_classes)
    d = R3GANDiscriminator(cfg.resolution, channels, cfg.d_width, num_classes, cfg.latent_dim)
    return g, d
