"""Layers and helpers shared by the model families: minibatch std-dev, self-attention, norms, init, spectral norm."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from core.config import ConfigError, TrainConfig


class MinibatchStdDev(nn.Module):
    """Append one feature: the mean std-dev of features within a group of samples (Karras et al. 2018).

    Works on (B, C, H, W) (adds a channel) and on (B, F) (adds a column). A D that sees how varied
    a batch is can penalise a collapsed G. The group size is the largest divisor of B that is
    <= group_size, so any batch size works (B = 1 gives a constant feature).
    """

    def __init__(self, group_size: int = 4, eps: float = 1e-8):
        super().__init__()
        self.group_size = group_size
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        g = min(self.group_size, b)
        while b % g:
            g -= 1
        rest = x.shape[1:]
        # Sample i belongs to group i % (b // g), as in StyleGAN: groups mix the batch order.
        y = x.reshape(g, b // g, *rest).float()
        std = (y.var(dim=0, unbiased=False) + self.eps).sqrt()  # (b/g, *rest)
        stat = std.flatten(1).mean(dim=1).to(x.dtype)  # (b/g,)
        stat = stat.repeat(g)  # (b,) back in the original order
        shape = (b, 1) + tuple(x.shape[2:])
        return torch.cat([x, stat.view(b, *([1] * (x.dim() - 1))).expand(shape)], dim=1)


class SelfAttention(nn.Module):
    """SAGAN self-attention over spatial positions (Zhang et al. 2019); starts as identity (gamma = 0)."""

    def __init__(self, channels: int):
        super().__init__()
        inner = max(channels // 8, 1)
        self.query = nn.Conv2d(channels, inner, 1, bias=False)
        self.key = nn.Conv2d(channels, inner, 1, bias=False)
        self.value = nn.Conv2d(channels, max(channels // 2, 1), 1, bias=False)
        self.out = nn.Conv2d(max(channels // 2, 1), channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q = self.query(x).flatten(2).transpose(1, 2)  # B x HW x c'
        k = self.key(x).flatten(2)  # B x c' x HW
        attn = torch.softmax(q @ k, dim=-1)  # B x HW x HW
        v = self.value(x).flatten(2)  # B x c/2 x HW
        o = (v @ attn.transpose(1, 2)).view(b, -1, h, w)
        return x + self.gamma * self.out(o)


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm whose scale and shift come from the class label (plain affine BN when num_classes == 0)."""

    def __init__(self, channels: int, num_classes: int = 0):
        super().__init__()
        self.num_classes = num_classes
        self.bn = nn.BatchNorm2d(channels, affine=num_classes == 0)
        if num_classes:
            # Start at the identity transform so every class begins like plain BN.
            self.gain = nn.Embedding(num_classes, channels)
            self.bias = nn.Embedding(num_classes, channels)
            nn.init.zeros_(self.gain.weight)
            nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.bn(x)
        if not self.num_classes:
            return h
        return h * (1 + self.gain(y))[:, :, None, None] + self.bias(y)[:, :, None, None]


def resolve_d_norm(cfg: TrainConfig) -> str:
    """The normalisation D really uses: 'batch', 'layer' or 'none'.

    BatchNorm mixes samples, so the per-sample input gradient that WGAN-GP and R1 penalise is not
    well defined; auto therefore picks 'none' there. Spectral norm replaces BatchNorm in D.
    """
    penalised = cfg.loss == "wgan-gp" or cfg.uses_r1
    norm = cfg.d_norm
    if norm == "auto":
        norm = "none" if penalised or cfg.spectral_norm else "batch"
    if norm == "batch" and penalised:
        raise ConfigError("d_norm", "batch norm in D breaks the per-sample gradient penalty of wgan-gp / r1; "
                                    "use layer, none or auto")
    if norm == "batch" and cfg.spectral_norm:
        norm = "none"
    if norm not in ("batch", "layer", "none"):
        raise ConfigError("d_norm", f"unknown normalisation {cfg.d_norm!r}; valid: auto, batch, layer, none")
    return norm


def norm2d(kind: str, channels: int) -> nn.Module:
    """A 2-d normalisation layer by name ('layer' = GroupNorm(1, C): normalises over C, H, W per sample)."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    return nn.Identity()


def add_spectral_norm(module: nn.Module) -> nn.Module:
    """Wrap every Conv/Linear/Embedding weight in ``module`` with spectral norm (in place); returns module.

    Call it after weight init: the parametrisation keeps the initialised weight as ``original``.
    """
    for m in list(module.modules()):
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)) \
                and not parametrize.is_parametrized(m, "weight"):
            spectral_norm(m)
    return module


def dcgan_init(m: nn.Module) -> None:
    """Radford et al. 2015 init, for ``model.apply``: conv/linear N(0, 0.02), BN weight N(1, 0.02), bias 0."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)) and m.affine:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def xavier_init(m: nn.Module) -> None:
    """SNGAN init, for ``model.apply``: Xavier-uniform, gain sqrt(2) for 3x3 convs (ReLU follows), 1 otherwise."""
    if isinstance(m, (nn.Conv2d, nn.Linear)):
        gain = math.sqrt(2) if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1) else 1.0
        nn.init.xavier_uniform_(m.weight, gain)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")
