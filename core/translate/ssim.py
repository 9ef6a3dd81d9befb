"""SSIM (Wang et al. 2004) for held-out pairs: 11 x 11 Gaussian window (sigma 1.5), no padding, images in [0, 1]."""
from __future__ import annotations

import torch
import torch.nn.functional as F

C1, C2 = 0.01 ** 2, 0.03 ** 2  # (K1 L)^2, (K2 L)^2 with L = 1


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-x ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim(x: torch.Tensor, y: torch.Tensor, size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Mean SSIM per image (N,) of two (N, C, H, W) batches in [0, 1]; the window shrinks to the image
    side for images smaller than it (16 px held-out pairs still get a score)."""
    size = min(size, x.shape[-1], x.shape[-2])
    c = x.shape[1]
    w = gaussian_window(size, sigma).to(x.device, torch.float32).expand(c, 1, size, size)
    x, y = x.float(), y.float()

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, w, groups=c)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
    s = ((2 * mx * my + C1) * (2 * cxy + C2)) / ((mx ** 2 + my ** 2 + C1) * (vx + vy + C2))
    return s.flatten(1).mean(1)
