"""Base classes fixing the G/D interface every model family implements (shapes, labels, projection)."""
from __future__ import annotations

import torch
from torch import nn


def check_labels(y: torch.Tensor | None, num_classes: int, batch: int, who: str) -> torch.Tensor | None:
    """Labels a network may use: None for unconditional models (any y is ignored), else a (B,) long tensor."""
    if not num_classes:
        return None
    if y is None:
        raise ValueError(f"{who} is conditional on {num_classes} classes: pass class labels y (LongTensor of shape (B,))")
    if y.shape != (batch,):
        raise ValueError(f"{who}: labels y must have shape ({batch},), got {tuple(y.shape)}")
    return y.long()


class Generator(nn.Module):
    """G(z (B, latent_dim), y (B,) | None) -> images (B, channels, resolution, resolution) in [-1, 1]."""

    def __init__(self, latent_dim: int, resolution: int, channels: int, num_classes: int = 0):
        super().__init__()
        self.latent_dim = latent_dim
        self.resolution = resolution
        self.channels = channels
        self.num_classes = num_classes

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"generator expects z of shape (B, {self.latent_dim}), got {tuple(z.shape)}")
        return self.generate(z, check_labels(y, self.num_classes, z.shape[0], "generator"))

    def generate(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError


class Discriminator(nn.Module):
    """D(x, y) -> raw logits (B,); D.features(x, y) -> (B, F) penultimate per-sample features.

    Subclasses implement ``trunk`` (x -> hidden h), ``pool`` (h -> (B, F) features) and ``head``
    (h, features -> (B,) logits). When ``self.embed`` is set the label enters as a projection
    (Miyato & Koyama 2018): logit += <embed(y), features>, so the features themselves never need y.
    """

    def __init__(self, resolution: int, channels: int, num_classes: int = 0, latent_dim: int = 0):
        super().__init__()
        self.embed: nn.Module | None = None  # set to an nn.Embedding by projection discriminators
        self.mbd: nn.Module | None = None    # minibatch discrimination (set by build_models): adds to the logit
        self.latent_dim = latent_dim
        self.resolution = resolution
        self.channels = channels
        self.num_classes = num_classes

    def trunk(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def pool(self, h: torch.Tensor) -> torch.Tensor:
        return h.flatten(1)

    def head(self, h: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _check_x(self, x: torch.Tensor) -> None:
        want = (self.channels, self.resolution, self.resolution)
        if x.dim() != 4 or tuple(x.shape[1:]) != want:
            raise ValueError(f"discriminator expects images of shape (B, {', '.join(map(str, want))}), got {tuple(x.shape)}")

    def features(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        self._check_x(x)
        # Projection D's features do not depend on y, so labels are optional here.
        y = check_labels(y, self.num_classes, x.shape[0], "discriminator") if self.embed is None or y is not None else None
        return self.pool(self.trunk(x, y))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        self._check_x(x)
        y = check_labels(y, self.num_classes, x.shape[0], "discriminator")
        h = self.trunk(x, y)
        feats = self.pool(h)
        out = self.head(h, feats)
        if self.embed is not None:
            out = out + (self.embed(y) * feats).sum(dim=1)
        if self.mbd is not None:
            out = out + self.mbd(feats)
        return out
