"""Translation networks: the pix2pix U-Net, the PatchGAN discriminator and CycleGAN's ResNet generator."""
from __future__ import annotations

import math

import torch
from torch import nn

from ..config import ConfigError, TrainConfig


def _norm(kind: str, ch: int) -> nn.Module:
    # Instance norm without running statistics, as in CycleGAN: eval and train normalise alike.
    return nn.BatchNorm2d(ch) if kind == "batch" else nn.InstanceNorm2d(ch)


class UNetGenerator(nn.Module):
    """pix2pix's U-Net (Isola et al. 2017): an encoder of stride-2 4x4 convolutions down to 1 x 1, a
    mirrored decoder, and a skip from every encoder level to its decoder twin (concatenated). Dropout
    (p 0.5) in the three innermost decoder layers is the paper's noise source: on in training, off in
    eval, so translations at inference are deterministic."""

    def __init__(self, in_ch: int, out_ch: int, resolution: int, width: int = 64, norm: str = "batch"):
        super().__init__()
        depth = int(math.log2(resolution))  # down to 1 x 1, as the paper's 8 levels at 256 px
        chans = [width * min(2 ** i, 8) for i in range(depth)]
        self.downs = nn.ModuleList()
        prev = in_ch
        for i, ch in enumerate(chans):
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(prev, ch, 4, 2, 1, bias=False if 0 < i < depth - 1 else True))
            if 0 < i < depth - 1:  # neither the first layer nor the 1 x 1 bottleneck is normalised
                layers.append(_norm(norm, ch))
            self.downs.append(nn.Sequential(*layers))
            prev = ch
        self.ups = nn.ModuleList()
        for j in range(depth - 1, 0, -1):  # decoder level j produces encoder level j-1's size
            cin = chans[j] if j == depth - 1 else chans[j] * 2  # the innermost has no skip yet
            layers = [nn.ReLU(), nn.ConvTranspose2d(cin, chans[j - 1], 4, 2, 1, bias=False), _norm(norm, chans[j - 1])]
            if depth - 1 - j < 3 and j > 1:
                layers.append(nn.Dropout(0.5))
            self.ups.append(nn.Sequential(*layers))
        self.out = nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(chans[0] * 2, out_ch, 4, 2, 1), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for down in self.downs:
            x = down(x)
            skips.append(x)
        x = skips.pop()
        for up in self.ups:
            x = torch.cat([up(x), skips.pop()], 1)
        return self.out(x)


class PatchDiscriminator(nn.Module):
    """PatchGAN (pix2pix / CycleGAN): a grid of logits, each judging one overlapping patch (70 x 70 with
    three stride-2 layers). Fewer layers at small sizes, so a patch stays smaller than the image."""

    def __init__(self, in_ch: int, resolution: int, width: int = 64, norm: str = "batch"):
        super().__init__()
        self.n_layers = n = patch_layers(resolution)
        layers: list[nn.Module] = [nn.Conv2d(in_ch, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        ch = width
        for i in range(1, n + 1):
            nxt = width * min(2 ** i, 8)
            stride = 2 if i < n else 1  # the paper's last hidden layer keeps the size
            layers += [nn.Conv2d(ch, nxt, 4, stride, 1, bias=False), _norm(norm, nxt), nn.LeakyReLU(0.2)]
            ch = nxt
        layers.append(nn.Conv2d(ch, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def patch_layers(resolution: int) -> int:
    """Hidden layers of the PatchGAN: 3 (70 x 70 patches) from 128 px, 2 at 64 px (34 x 34), 1 below (16 x 16)."""
    return max(1, min(3, int(math.log2(resolution)) - 4))


class ResnetBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3, bias=False), nn.InstanceNorm2d(ch), nn.ReLU(),
                                  nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3, bias=False), nn.InstanceNorm2d(ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """CycleGAN's generator (Johnson et al. 2016 as used by Zhu et al. 2017): reflection-padded 7x7 stem,
    two stride-2 downsamplings, residual blocks, two transposed-conv upsamplings, tanh."""

    def __init__(self, in_ch: int, out_ch: int, resolution: int, width: int = 64):
        super().__init__()
        self.n_blocks = n_blocks(resolution)
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_ch, width, 7, bias=False), nn.InstanceNorm2d(width), nn.ReLU()]
        ch = width
        for _ in range(2):
            layers += [nn.Conv2d(ch, ch * 2, 3, 2, 1, bias=False), nn.InstanceNorm2d(ch * 2), nn.ReLU()]
            ch *= 2
        layers += [ResnetBlock(ch) for _ in range(self.n_blocks)]
        for _ in range(2):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 3, 2, 1, output_padding=1, bias=False), nn.InstanceNorm2d(ch // 2), nn.ReLU()]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, out_ch, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def n_blocks(resolution: int) -> int:
    """Residual blocks: the paper's 9 at 256 px, 6 at 128 px, fewer below (3 at 16-64 px)."""
    return 9 if resolution >= 256 else 6 if resolution >= 128 else 3


def build_translation_models(cfg: TrainConfig, channels: int) -> tuple[nn.Module, nn.Module]:
    """(G, D) of the run's direction: pix2pix's U-Net and PatchGAN on concat(input, output);
    CycleGAN's ResNet generator and the PatchGAN of its output domain. CycleGAN's second pair is
    built the same way (``core.translate.step``)."""
    if not (isinstance(channels, int) and channels >= 1):
        raise ConfigError("channels", f"need at least one image channel, got {channels!r}")
    r = cfg.resolution
    if cfg.task == "pix2pix":
        return (UNetGenerator(channels, channels, r, cfg.g_width, "batch"),
                PatchDiscriminator(2 * channels, r, cfg.d_width, "batch"))
    if cfg.task == "cyclegan":
        return ResnetGenerator(channels, channels, r, cfg.g_width), PatchDiscriminator(channels, r, cfg.d_width, "instance")
    raise ConfigError("task", f"{cfg.task!r} is not a translation task")
