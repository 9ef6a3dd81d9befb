"""SNGAN-style residual G and D (Miyato et al. 2018): spectral norm on all of D, projection for labels."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from core.config import TrainConfig
from core.models.base import Discriminator, Generator
from core.models.layers import (
    ConditionalBatchNorm2d,
    MinibatchStdDev,
    SelfAttention,
    add_spectral_norm,
    upsample2x,
    xavier_init,
)
from core.models.progressive import ProgressiveDiscriminator, ProgressiveGenerator
from core.models.registry import register

# Channel multiplier of the base width: 4x at the coarse end (64 -> 256 at 4 x 4), 1x at full size.
# Modest on purpose, so 32 px runs on a CPU.
_MAX_MULT = 4


class GBlock(nn.Module):
    """(BN, ReLU, up 2x, conv3x3, BN, ReLU, conv3x3) + (conv1x1, up 2x) shortcut; BN is class-conditional."""

    def __init__(self, cin: int, cout: int, num_classes: int):
        super().__init__()
        self.bn1 = ConditionalBatchNorm2d(cin, num_classes)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.bn2 = ConditionalBatchNorm2d(cout, num_classes)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        h = self.conv1(upsample2x(F.relu(self.bn1(x, y))))
        h = self.conv2(F.relu(self.bn2(h, y)))
        # 1x1 conv before the nearest upsample: same result, 4x cheaper.
        return h + upsample2x(self.shortcut(x))


class DBlock(nn.Module):
    """(ReLU, conv3x3, ReLU, conv3x3, avg-pool) + (conv1x1, avg-pool) shortcut; ``first`` = no leading ReLU
    and pool before the shortcut conv (SNGAN's "optimized" input block)."""

    def __init__(self, cin: int, cout: int, down: bool = True, first: bool = False):
        super().__init__()
        self.down, self.first = down, first
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.shortcut = nn.Conv2d(cin, cout, 1) if (cin != cout or down) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        if self.down:
            h = F.avg_pool2d(h, 2)
        s = x
        if self.first:
            # The raw image is not activated, so pooling first is exact and cheaper.
            s = self.shortcut(F.avg_pool2d(s, 2))
        else:
            if self.shortcut is not None:
                s = self.shortcut(s)
            if self.down:
                s = F.avg_pool2d(s, 2)
        return h + s


class ResNetGenerator(Generator):
    """z -> (4w) x 4 x 4 -> up-blocks (halving width down to w) -> BN, ReLU, conv3x3 -> C x R x R (tanh)."""

    def __init__(self, latent_dim: int, resolution: int, channels: int, width: int, num_classes: int = 0,
                 attention: int = 0):
        super().__init__(latent_dim, resolution, channels, num_classes)
        n_up = int(math.log2(resolution)) - 2
        self.attn, self.attn_after = None, -1
        ch = width * min(_MAX_MULT, 2 ** n_up)
        self.ch0 = ch
        self.linear = nn.Linear(latent_dim, ch * 16)  # ch x 4 x 4
        blocks = []
        for i in range(n_up):
            out = width * min(_MAX_MULT, 2 ** (n_up - 1 - i))
            blocks.append(GBlock(ch, out, num_classes))  # out x 2^(i+3) x 2^(i+3)
            if attention == 2 ** (i + 3):  # SAGAN: attention over this block's output
                self.attn, self.attn_after = SelfAttention(out), i
            ch = out
        self.blocks = nn.ModuleList(blocks)
        self.bn = nn.BatchNorm2d(ch)
        self.out = nn.Conv2d(ch, channels, 3, 1, 1)  # C x R x R

    def generate(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        h = self.linear(z).unflatten(1, (self.ch0, 4, 4))  # unflatten: ONNX-exportable with a dynamic batch
        for i, block in enumerate(self.blocks):
            h = block(h, y)
            if i == self.attn_after:
                h = self.attn(h)
        return torch.tanh(self.out(F.relu(self.bn(h))))


class ResNetDiscriminator(Discriminator):
    """C x R x R -> w x R/2 -> ... (doubling to 4w) -> 4 x 4 -> last block -> ReLU, sum-pool -> linear.

    Features are the sum-pooled output of the last block; labels enter by projection. With
    minibatch_std the std-dev statistic feeds the last block, so features then depend on the batch.
    """

    def __init__(self, resolution: int, channels: int, width: int, minibatch_std: bool,
                 num_classes: int = 0, latent_dim: int = 0, attention: int = 0):
        super().__init__(resolution, channels, num_classes, latent_dim)
        n_down = int(math.log2(resolution)) - 2
        blocks: list[nn.Module] = [DBlock(channels, width, first=True)]  # w x R/2 x R/2
        if attention == resolution // 2:
            blocks.append(SelfAttention(width))
        ch = width
        for i in range(1, n_down):
            out = width * min(_MAX_MULT, 2 ** i)
            blocks.append(DBlock(ch, out))  # out x R/2^(i+1) x R/2^(i+1)
            if attention == resolution >> (i + 1):
                blocks.append(SelfAttention(out))
            ch = out
        self.blocks = nn.Sequential(*blocks)  # ch x 4 x 4
        self.mbstd = MinibatchStdDev() if minibatch_std else None
        self.last = DBlock(ch + int(minibatch_std), ch, down=False)  # ch x 4 x 4
        self.feature_dim = ch
        self.linear = nn.Linear(ch, 1)
        if num_classes:
            self.embed = nn.Embedding(num_classes, ch)

    def trunk(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        h = self.blocks(x)
        if self.mbstd is not None:
            h = self.mbstd(h)  # (ch + 1) x 4 x 4
        return F.relu(self.last(h))

    def pool(self, h: torch.Tensor) -> torch.Tensor:
        return h.sum(dim=(2, 3))  # global sum pooling, as in SNGAN

    def head(self, h: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        return self.linear(feats).flatten()


class _Stem(nn.Module):
    """z -> linear -> ch x 4 x 4 (ResNetGenerator's first layer)."""

    def __init__(self, latent_dim: int, ch: int):
        super().__init__()
        self.ch, self.linear = ch, nn.Linear(latent_dim, ch * 16)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return self.linear(z).unflatten(1, (self.ch, 4, 4))


class ProgResNetDiscriminator(ProgressiveDiscriminator):
    """Progressive SNGAN D: 1x1 from-RGB convs, residual down-blocks, then ResNetDiscriminator's top and head."""

    def __init__(self, cfg: TrainConfig, channels: int, num_classes: int):
        r_max, w, start = cfg.resolution, cfg.d_width, cfg.progressive_start
        ch = {2 ** k: w * min(_MAX_MULT, max(1, r_max // 2 ** (k + 1))) for k in range(2, int(math.log2(r_max)) + 1)}
        from_rgb = nn.ModuleDict({str(r): nn.Conv2d(channels, c, 1) for r, c in ch.items() if r >= start})
        blocks = nn.ModuleList(DBlock(ch[2 * r], ch[r]) for r in sorted(ch)[:-1])
        super().__init__(r_max, channels, num_classes, cfg.latent_dim, start, from_rgb, blocks)
        self.mbstd = MinibatchStdDev() if cfg.minibatch_std else None
        self.last = DBlock(ch[4] + int(cfg.minibatch_std), ch[4], down=False)
        self.feature_dim = ch[4]
        self.linear = nn.Linear(ch[4], 1)
        if num_classes:
            self.embed = nn.Embedding(num_classes, ch[4])

    def top(self, h: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        if self.mbstd is not None:
            h = self.mbstd(h)
        return F.relu(self.last(h))

    pool = ResNetDiscriminator.pool
    head = ResNetDiscriminator.head


def _build_progressive(cfg: TrainConfig, channels: int, num_classes: int) -> tuple[nn.Module, nn.Module]:
    r_max, w, start = cfg.resolution, cfg.g_width, cfg.progressive_start
    ch = {2 ** k: w * min(_MAX_MULT, r_max // 2 ** k) for k in range(2, int(math.log2(r_max)) + 1)}
    blocks = nn.ModuleList(GBlock(ch[r], ch[2 * r], num_classes) for r in sorted(ch)[:-1])
    to_rgb = nn.ModuleDict({str(r): nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, channels, 3, 1, 1), nn.Tanh())
                            for r, c in ch.items() if r >= start})
    g = ProgressiveGenerator(cfg.latent_dim, r_max, channels, num_classes, start, _Stem(cfg.latent_dim, ch[4]), blocks, to_rgb)
    return g, ProgResNetDiscriminator(cfg, channels, num_classes)


@register("resnet-sn")
def build_resnet_sn(cfg: TrainConfig, channels: int, num_classes: int) -> tuple[nn.Module, nn.Module]:
    # d_norm does not apply: spectral norm is this D's only normalisation, whatever cfg.spectral_norm says.
    if cfg.progressive:  # ProGAN-style growing over the same blocks (core/models/progressive.py)
        g, d = _build_progressive(cfg, channels, num_classes)
    else:
        g = ResNetGenerator(cfg.latent_dim, cfg.resolution, channels, cfg.g_width, num_classes, cfg.attention)
        d = ResNetDiscriminator(cfg.resolution, channels, cfg.d_width, cfg.minibatch_std, num_classes, cfg.latent_dim,
                                cfg.attention)
    g.apply(xavier_init)
    d.apply(xavier_init)
    if d.embed is not None:
        nn.init.xavier_uniform_(d.embed.weight)
    add_spectral_norm(d)
    return g, d
