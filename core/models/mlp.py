"""Fully connected G and D, as in the original GAN (Goodfellow et al. 2014); conditional by one-hot concatenation."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from core.config import TrainConfig
from core.models.base import Discriminator, Generator
from core.models.layers import MinibatchStdDev, add_spectral_norm
from core.models.registry import register

# Dropout in D's hidden layers, as Goodfellow et al. used; it keeps a dense D from memorising a small set.
DROPOUT = 0.3


class MLPGenerator(Generator):
    """z [+ one-hot y] -> 4w -> 8w -> 16w (ReLU, BatchNorm) -> C*R*R (tanh), reshaped to C x R x R."""

    def __init__(self, latent_dim: int, resolution: int, channels: int, width: int, num_classes: int = 0):
        super().__init__(latent_dim, resolution, channels, num_classes)
        h = 4 * width
        self.net = nn.Sequential(
            nn.Linear(latent_dim + num_classes, h), nn.ReLU(True),
            nn.Linear(h, 2 * h), nn.BatchNorm1d(2 * h), nn.ReLU(True),
            nn.Linear(2 * h, 4 * h), nn.BatchNorm1d(4 * h), nn.ReLU(True),
            nn.Linear(4 * h, channels * resolution * resolution), nn.Tanh(),
        )

    def generate(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        if y is not None:
            z = torch.cat([z, F.one_hot(y, self.num_classes).to(z.dtype)], dim=1)
        return self.net(z).view(-1, self.channels, self.resolution, self.resolution)


class MLPDiscriminator(Discriminator):
    """C*R*R [+ one-hot y] -> 16w -> 8w -> 4w (LeakyReLU 0.2, dropout) -> 1 logit. No normalisation.

    Features are the last hidden layer (4w). The label is concatenated to the input, so a
    conditional MLP D needs y for its features too.
    """

    def __init__(self, resolution: int, channels: int, width: int, minibatch_std: bool,
                 num_classes: int = 0, latent_dim: int = 0, dropout: float = DROPOUT):
        super().__init__(resolution, channels, num_classes, latent_dim)
        h = 4 * width
        self.net = nn.Sequential(
            nn.Linear(channels * resolution * resolution + num_classes, 4 * h), nn.LeakyReLU(0.2, True),
            nn.Dropout(dropout),
            nn.Linear(4 * h, 2 * h), nn.LeakyReLU(0.2, True), nn.Dropout(dropout),
            nn.Linear(2 * h, h), nn.LeakyReLU(0.2, True),
        )
        self.feature_dim = h
        self.mbstd = MinibatchStdDev() if minibatch_std else None
        self.final = nn.Linear(h + int(minibatch_std), 1)

    def trunk(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        x = x.flatten(1)
        if y is not None:
            x = torch.cat([x, F.one_hot(y, self.num_classes).to(x.dtype)], dim=1)
        return self.net(x)

    def head(self, h: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        if self.mbstd is not None:
            h = self.mbstd(h)  # h + 1 features
        return self.final(h).flatten()


@register("mlp")
def build_mlp(cfg: TrainConfig, channels: int, num_classes: int) -> tuple[nn.Module, nn.Module]:
    # d_norm does not apply: the original fully connected D has no normalisation.
    g = MLPGenerator(cfg.latent_dim, cfg.resolution, channels, cfg.g_width, num_classes)
    d = MLPDiscriminator(cfg.resolution, channels, cfg.d_width, cfg.minibatch_std, num_classes, cfg.latent_dim)
    if cfg.spectral_norm:
        add_spectral_norm(d)
    return g, d
