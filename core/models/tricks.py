"""Discriminator tricks of the curriculum that wrap any family: minibatch discrimination (Salimans et al. 2016) and PacGAN packing (Lin et al. 2018)."""
from __future__ import annotations

import torch
from torch import nn


class MinibatchDiscrimination(nn.Module):
    """Salimans et al. 2016, section 3.2: each sample's features are projected to ``kernels`` rows of
    ``dims`` values; o_b(x_i) = sum_j exp(-||M_i,b - M_j,b||_1) over the other samples says how
    close x_i is to the rest of its batch in each of the ``kernels`` learned views. A linear map of
    o adds to the logit, so D can reject a batch whose samples are all alike (mode collapse).

    Unlike minibatch std-dev (one statistic of the whole batch) it compares samples pairwise, with
    learned projections. Cost: O(B^2 * kernels * dims).
    """

    def __init__(self, in_features: int, kernels: int = 32, dims: int = 8):
        super().__init__()
        self.kernels, self.dims = kernels, dims
        self.T = nn.Parameter(torch.randn(in_features, kernels * dims) * 0.1)
        self.out = nn.Linear(kernels, 1)
        nn.init.zeros_(self.out.weight)  # starts as a no-op: D's own logit is unchanged at step 0
        nn.init.zeros_(self.out.bias)

    def closeness(self, f: torch.Tensor) -> torch.Tensor:
        """(B, F) features -> (B, kernels): the o(x_i) of the paper, self excluded."""
        m = (f.float() @ self.T.float()).view(-1, self.kernels, self.dims)    # B x K x D
        l1 = (m[:, None] - m[None, :]).abs().sum(dim=3)                        # B x B x K
        return torch.exp(-l1).sum(dim=1) - 1.0                                 # minus exp(0) of the pair (i, i)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.out(self.closeness(f)).squeeze(1).to(f.dtype)              # (B,) added to the logit


class PackedDiscriminator(nn.Module):
    """PacGAN: D judges ``pac`` samples at once, stacked along channels, so a generator that
    repeats itself is easier to catch (the packed sample of a collapsed G is visibly uniform).

    ``inner`` is a family's D built for ``channels * pac`` input channels. A batch of B images
    gives B // pac logits; a remainder is dropped (every loss is a mean, so its scale is unchanged).
    """

    def __init__(self, inner: nn.Module, pac: int, channels: int):
        super().__init__()
        self.inner, self.pac, self.channels = inner, pac, channels
        self.num_classes = 0
        self.resolution = inner.resolution
        self.feature_dim = getattr(inner, "feature_dim", None)
        self.embed = None

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        if b < self.pac:  # a batch smaller than a pack (a diagnostic's probe): repeat to fill one
            x = x.repeat((self.pac + b - 1) // b, 1, 1, 1)[: self.pac]
            b = self.pac
        n = b // self.pac
        # Consecutive samples share a pack: images i*pac .. i*pac+pac-1 become pack i.
        return x[: n * self.pac].reshape(n, self.pac * x.shape[1], *x.shape[2:])

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.inner(self.pack(x))

    def features(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.inner.features(self.pack(x))
