"""Perceptual path length (Karras et al. 2019, 2020): how much the image changes per tiny step along a latent path.

PPL = E[ d(G(p(t)), G(p(t + eps))) / eps^2 ] with p a slerp between two z (``ppl_z``) or, for a style-based G,
a lerp between their mapped styles w (``ppl_w``, the StyleGAN2 definition); t ~ U(0, 1), eps = 1e-4, and the
mean is taken after dropping the distances below the 1% and above the 99% quantile.

The published d is LPIPS on VGG16, whose weights are not available offline; the default here is a clearly
named stand-in, the mean squared pixel difference of the images (downsampled to at most 64 px). Inception
features are not used: their input is quantised to uint8, which erases an eps = 1e-4 step. Any module mapping
float images in [-1, 1] to features can be passed as ``feature`` (its name is recorded with the value).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

EPSILON = 1e-4
PIXEL_NET = "pixel-mse-64px (stand-in for LPIPS-VGG16; not comparable with papers)"
SPACES = ("auto", "z", "w")


@dataclass
class PPLResult:
    metric: str          # "ppl_z" or "ppl_w"
    value: float         # trimmed mean of the distances
    std: float           # standard deviation of the kept distances
    n: int               # pairs sampled
    kept: int            # pairs between the 1% and 99% quantiles
    feature_net: str
    epsilon: float


def _style_based(G: nn.Module) -> bool:
    return all(hasattr(G, a) for a in ("mapping", "synthesis", "num_ws", "w_avg"))


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Row-wise spherical interpolation (B, D): the direction along the great circle, the norm linearly
    (so for a Gaussian z the path stays on the shell where the prior lives)."""
    na, nb = a.norm(dim=1, keepdim=True), b.norm(dim=1, keepdim=True)
    ua, ub = a / na.clamp_min(1e-12), b / nb.clamp_min(1e-12)
    omega = torch.arccos((ua * ub).sum(1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    t = t.view(-1, 1)
    so = torch.sin(omega)
    d = (torch.sin((1 - t) * omega) / so) * ua + (torch.sin(t * omega) / so) * ub
    return d * (na + t * (nb - na))


def pixel_distance(x0: torch.Tensor, x1: torch.Tensor, max_px: int = 64) -> torch.Tensor:
    """(B,) mean squared difference of two image batches in [-1, 1], area-downsampled to at most ``max_px``."""
    if x0.shape[-1] > max_px:
        x0, x1 = F.adaptive_avg_pool2d(x0, max_px), F.adaptive_avg_pool2d(x1, max_px)
    return (x0 - x1).pow(2).flatten(1).mean(1)


def _distance(feature: nn.Module | None, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    if feature is None:
        return pixel_distance(x0.double(), x1.double())
    f0, f1 = feature(x0).flatten(1).double(), feature(x1).flatten(1).double()
    return (f0 - f1).pow(2).sum(1)


@torch.no_grad()
def path_distances(G: nn.Module, z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor, space: str = "z",
                   y: torch.Tensor | None = None, epsilon: float = EPSILON,
                   feature: nn.Module | None = None) -> torch.Tensor:
    """(B,) d(G(p(t)), G(p(t + eps))) / eps^2 for explicit endpoints z0, z1 (B, D) and positions t (B,)."""
    dtype = next(G.parameters()).dtype
    z0, z1, t = z0.to(dtype), z1.to(dtype), t.to(dtype)
    if space == "w":
        if not _style_based(G):
            raise ValueError("ppl in w needs a style-based generator (arch=stylegan2); use space='z'")
        w0, w1 = G.mapping(z0, y), G.mapping(z1, y)
        tt = t.view(-1, 1, 1)
        wa, wb = w0.lerp(w1, tt), w0.lerp(w1, tt + epsilon)
        x0, x1 = G.synthesis(wa), G.synthesis(wb)
    elif space == "z":
        x0, x1 = G(slerp(z0, z1, t), y), G(slerp(z0, z1, t + epsilon), y)
    else:
        raise ValueError(f"unknown ppl space {space!r}; valid: z, w")
    return _distance(feature, x0.float() if dtype != torch.float64 else x0, x1) / (epsilon ** 2)


def trimmed_mean(d: torch.Tensor, lo: float = 0.01, hi: float = 0.99) -> tuple[float, float, int]:
    """(mean, std, count) of the values between the ``lo`` and ``hi`` quantiles, inclusive (as the paper's code,
    which uses the lower / higher neighbouring sample as the quantile)."""
    d = d.double().flatten()
    if d.numel() == 0:
        raise ValueError("no path distances to average")
    s = d.sort().values
    n = len(s)
    # numpy percentile(..., interpolation="lower" / "higher"); rounding first keeps float noise out of floor/ceil
    a = s[math.floor(round(lo * (n - 1), 9))]
    b = s[math.ceil(round(hi * (n - 1), 9))]
    kept = d[(d >= a) & (d <= b)]
    std = float(kept.std()) if len(kept) > 1 else 0.0
    return float(kept.mean()), std, int(len(kept))


@torch.no_grad()
def ppl(G: nn.Module, n: int = 2000, space: str = "auto", epsilon: float = EPSILON, feature: nn.Module | None = None,
        seed: int = 0, batch_size: int = 64, device: torch.device | str | None = None) -> PPLResult:
    """Perceptual path length of G over ``n`` random pairs (see the module docstring). ``space``: "auto"
    (w for a style-based G, z otherwise), "z" or "w". The global RNG and G's train/eval mode are left as found."""
    if space not in SPACES:
        raise ValueError(f"unknown ppl space {space!r}; valid: {', '.join(SPACES)}")
    if n < 2:
        raise ValueError("ppl needs n >= 2 pairs")
    if not epsilon > 0:
        raise ValueError(f"ppl epsilon must be > 0, got {epsilon}")
    space = ("w" if _style_based(G) else "z") if space == "auto" else space
    dev = torch.device(device) if device is not None else next(G.parameters()).device
    gen = torch.Generator().manual_seed(int(seed) + 0x991)
    z0, z1 = torch.randn(n, G.latent_dim, generator=gen), torch.randn(n, G.latent_dim, generator=gen)
    t = torch.rand(n, generator=gen)
    k = int(getattr(G, "num_classes", 0) or 0)
    y = torch.randint(0, k, (n,), generator=gen) if k else None
    was_training = G.training
    G.eval()  # BatchNorm running statistics and stylegan2's constant noise: only the latent moves
    if feature is not None:
        feature = feature.to(dev).eval()
    try:
        parts = [path_distances(G, z0[i:i + batch_size].to(dev), z1[i:i + batch_size].to(dev),
                                t[i:i + batch_size].to(dev), space,
                                y[i:i + batch_size].to(dev) if y is not None else None, epsilon, feature).cpu()
                 for i in range(0, n, batch_size)]
    finally:
        G.train(was_training)
    mean, std, kept = trimmed_mean(torch.cat(parts))
    name = PIXEL_NET if feature is None else str(getattr(feature, "name", type(feature).__name__))
    return PPLResult(f"ppl_{space}", mean, std, n, kept, name, float(epsilon))
