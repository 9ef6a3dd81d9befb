"""StyleGAN2 (Karras et al. 2020) in plain PyTorch: mapping network, skip-connection G, residual D.

G(z, y) = synthesis(mapping(z, y)). ``mapping`` returns one w per synthesis layer, (B, num_ws, w_dim),
so callers can mix styles (replace some layers' w by another latent's) and truncate in w-space
(pull w toward the tracked average ``w_avg``). Layer i of ``ws`` drives the layers that
``StyleGAN2Generator.layer_resolution(i)`` names (coarse = low resolutions, fine = high).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from core.config import TrainConfig
from core.models.base import Discriminator, Generator, check_labels
from core.models.layers import MinibatchStdDev
from core.models.registry import register
from core.models.stylegan2_layers import (
    EqualConv2d,
    EqualLinear,
    SynthesisLayer,
    ToRGB,
    blur_kernel,
    normalize_2nd_moment,
    upsample2d,
)

MAPPING_LR_MUL = 0.01  # the mapping network learns 100x slower than the rest (paper: more stable w)
W_AVG_BETA = 0.995  # w_avg <- lerp(batch mean of w, w_avg, beta) at every training forward
_MAX_MULT = 8  # channels: width at full resolution, doubling toward 4 x 4 up to 8x width


def channels_at(res: int, resolution: int, width: int) -> int:
    return width * min(resolution // res, _MAX_MULT)


class MappingNetwork(nn.Module):
    """z (and a class embedding) -> normalised -> ``layers`` equalised-lr FC layers (lr x 0.01) -> w."""

    def __init__(self, latent_dim: int, w_dim: int, num_ws: int, layers: int, num_classes: int = 0):
        super().__init__()
        self.num_ws, self.num_classes = num_ws, num_classes
        self.embed = nn.Embedding(num_classes, w_dim) if num_classes else None
        if self.embed is not None:
            nn.init.normal_(self.embed.weight)
        dims = [latent_dim + (w_dim if num_classes else 0)] + [w_dim] * layers
        self.net = nn.Sequential(*[EqualLinear(a, b, lr_mul=MAPPING_LR_MUL, activation=True)
                                   for a, b in zip(dims[:-1], dims[1:])])
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, y: torch.Tensor | None, truncation_psi: float = 1.0,
                update_w_avg: bool = False) -> torch.Tensor:
        x = normalize_2nd_moment(z)
        if self.embed is not None:
            x = torch.cat([x, normalize_2nd_moment(self.embed(y).to(x.dtype))], dim=1)
        w = self.net(x)
        if update_w_avg:
            with torch.no_grad():
                self.w_avg.copy_(w.detach().float().mean(dim=0).lerp(self.w_avg, W_AVG_BETA))
        ws = w[:, None, :].repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            ws = self.w_avg.to(ws.dtype).lerp(ws, float(truncation_psi))
        return ws


class SynthesisBlock(nn.Module):
    """One resolution: [conv0 (2x up)], conv1, toRGB; the image skip path is upsampled and summed."""

    def __init__(self, w_dim: int, cin: int, cout: int, res: int, channels: int, first: bool):
        super().__init__()
        self.first = first
        self.conv0 = None if first else SynthesisLayer(w_dim, cin, cout, res, up=True)
        self.conv1 = SynthesisLayer(w_dim, cout, cout, res)
        self.torgb = ToRGB(w_dim, cout, channels)
        self.num_conv = 1 if first else 2
        self.channels = channels
        self.register_buffer("f", blur_kernel(), persistent=False)

    def forward(self, x: torch.Tensor, img: torch.Tensor | None, ws: torch.Tensor):
        i = 0
        if self.conv0 is not None:
            x = self.conv0(x, ws[:, 0])
            i = 1
        x = self.conv1(x, ws[:, i])
        rgb = self.torgb(x, ws[:, i + 1])  # shares its w with the next block's first conv
        img = rgb if img is None else upsample2d(img, self.f, self.channels).to(rgb.dtype) + rgb
        return x, img


class SynthesisNetwork(nn.Module):
    """ws (B, num_ws, w_dim) -> image: a learned 4 x 4 constant, then one block per resolution up to R."""

    def __init__(self, w_dim: int, resolution: int, channels: int, width: int):
        super().__init__()
        self.resolution = resolution
        levels = [2 ** i for i in range(2, int(math.log2(resolution)) + 1)]  # 4, 8, ..., R
        c4 = channels_at(4, resolution, width)
        self.const = nn.Parameter(torch.randn(1, c4, 4, 4))
        blocks, cin = [], c4
        for res in levels:
            cout = channels_at(res, resolution, width)
            blocks.append(SynthesisBlock(w_dim, cin, cout, res, channels, first=res == 4))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.num_ws = sum(b.num_conv for b in blocks) + 1  # + the last toRGB; = 2 log2(R) - 2

    def forward(self, ws: torch.Tensor) -> torch.Tensor:
        if ws.dim() != 3 or ws.shape[1] != self.num_ws:
            raise ValueError(f"synthesis expects ws of shape (B, {self.num_ws}, w_dim), got {tuple(ws.shape)}")
        x = self.const.expand(ws.shape[0], -1, -1, -1)
        img, i = None, 0
        for block in self.blocks:
            x, img = block(x, img, ws[:, i:i + block.num_conv + 1])
            i += block.num_conv
        return img


class StyleGAN2Generator(Generator):
    """z -> mapping -> ws -> synthesis -> image. Style mixing happens here while training (probability
    ``style_mixing``): a second latent's w takes over from a random layer on, for the fakes D sees
    and those G is trained on alike. The output is linear while training, as in the paper (D sees
    and penalises out-of-range pixels, no gradient dies at a clamp), and clamped to [-1, 1] in eval
    mode, where every sample, grid and export is made."""

    def __init__(self, latent_dim: int, resolution: int, channels: int, width: int, mapping_layers: int,
                 style_mixing: float = 0.0, num_classes: int = 0):
        super().__init__(latent_dim, resolution, channels, num_classes)
        self.w_dim = latent_dim
        self.synthesis_net = SynthesisNetwork(self.w_dim, resolution, channels, width)
        self.num_ws = self.synthesis_net.num_ws
        self.mapping_net = MappingNetwork(latent_dim, self.w_dim, self.num_ws, mapping_layers, num_classes)
        self.style_mixing = float(style_mixing)

    @property
    def w_avg(self) -> torch.Tensor:
        return self.mapping_net.w_avg

    def mapping(self, z: torch.Tensor, y: torch.Tensor | None = None, truncation_psi: float = 1.0,
                update_w_avg: bool = False) -> torch.Tensor:
        """(B, num_ws, w_dim) styles for latents z (labels y for conditional models); psi < 1 pulls
        every w toward w_avg (psi = 0: the average image whatever the seed)."""
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"mapping expects z of shape (B, {self.latent_dim}), got {tuple(z.shape)}")
        y = check_labels(y, self.num_classes, z.shape[0], "generator")
        return self.mapping_net(z, y, truncation_psi, update_w_avg)

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        img = self.synthesis_net(ws)
        return img if self.training else img.clamp(-1, 1)

    def layer_resolution(self, i: int) -> int:
        """The resolution of the convolution that w number ``i`` modulates (the last one: the final toRGB)."""
        return 4 * 2 ** min((i + 1) // 2, len(self.synthesis_net.blocks) - 1)

    def mix(self, ws: torch.Tensor, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """Style-mixing regularisation: with probability ``style_mixing`` per sample, the layers from
        a random crossover (1 .. num_ws-1) on take the w of a fresh latent."""
        b, n = ws.shape[0], self.num_ws
        ws2 = self.mapping_net(torch.randn_like(z), y)
        cut = torch.randint(1, n, (b,), device=z.device)
        cut = torch.where(torch.rand(b, device=z.device) < self.style_mixing, cut, torch.full_like(cut, n))
        take = torch.arange(n, device=z.device)[None, :] >= cut[:, None]  # (B, num_ws)
        return torch.where(take[:, :, None], ws2, ws)

    def generate(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        ws = self.mapping_net(z, y, update_w_avg=self.training)
        if self.training and self.style_mixing > 0 and self.num_ws > 1:
            ws = self.mix(ws, z, y)
        return self.synthesis(ws)


class DBlock(nn.Module):
    """Residual: (conv3x3, conv3x3 + 2x down) + (1x1 + 2x down) skip, summed with gain sqrt(1/2)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv0 = EqualConv2d(cin, cin, 3)
        self.conv1 = EqualConv2d(cin, cout, 3, down=True, gain=math.sqrt(0.5))
        self.skip = EqualConv2d(cin, cout, 1, bias=False, activation=False, down=True, gain=math.sqrt(0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.conv1(self.conv0(x))


class StyleGAN2Discriminator(Discriminator):
    """fromRGB -> residual blocks R -> 8 -> 4 x 4: minibatch std-dev, conv3x3 -> FC (features) -> FC logit.

    Labels enter by projection (the base class's ``embed``); the features are the penultimate FC.
    """

    def __init__(self, resolution: int, channels: int, width: int, num_classes: int = 0, latent_dim: int = 0):
        super().__init__(resolution, channels, num_classes, latent_dim)
        self.fromrgb = EqualConv2d(channels, channels_at(resolution, resolution, width), 1)
        blocks, res = [], resolution
        while res > 4:
            blocks.append(DBlock(channels_at(res, resolution, width), channels_at(res // 2, resolution, width)))
            res //= 2
        self.blocks = nn.Sequential(*blocks)
        c4 = channels_at(4, resolution, width)
        self.mbstd = MinibatchStdDev(group_size=4)
        self.conv = EqualConv2d(c4 + 1, c4, 3)
        self.fc = EqualLinear(c4 * 16, c4, activation=True)
        self.out = EqualLinear(c4, 1)
        self.feature_dim = c4
        if num_classes:
            # Unit-variance features times N(0, 1/F) embeddings: the projection term starts near N(0, 1).
            self.embed = nn.Embedding(num_classes, c4)
            nn.init.normal_(self.embed.weight, 0.0, 1 / math.sqrt(c4))

    def trunk(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return self.conv(self.mbstd(self.blocks(self.fromrgb(x))))

    def pool(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(h.flatten(1))

    def head(self, h: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        return self.out(feats).flatten()


@register("stylegan2")
def build_stylegan2(cfg: TrainConfig, channels: int, num_classes: int) -> tuple[nn.Module, nn.Module]:
    # d_norm, spectral_norm and minibatch_std do not apply (core/field_use.py says so): equalised
    # learning rate replaces normalisation, and this D always has its minibatch std-dev layer.
    g = StyleGAN2Generator(cfg.latent_dim, cfg.resolution, channels, cfg.g_width, cfg.mapping_layers,
                           cfg.style_mixing, num_classes)
    d = StyleGAN2Discriminator(cfg.resolution, channels, cfg.d_width, num_classes, cfg.latent_dim)
    return g, d
