"""DiffAugment (Zhao et al. 2020): differentiable colour/translation/cutout for real and fake batches."""
from __future__ import annotations

import torch

from .errors import DataError

POLICIES = ("color", "translation", "cutout")


def _rand(shape: tuple[int, ...], x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    # Draw on the generator's device (a CPU generator can then drive CUDA batches reproducibly).
    dev = g.device if g is not None else x.device
    return torch.rand(shape, generator=g, device=dev).to(device=x.device, dtype=x.dtype)


def _randint(high: int, shape: tuple[int, ...], x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    """Integers uniform in [0, high) per element, as long on x's device."""
    dev = g.device if g is not None else x.device
    u = torch.rand(shape, generator=g, device=dev).to(x.device)
    # A Python bound, not a tensor: a scalar tensor made on the GPU each call is a host->device
    # copy (a sync) several times per step.
    return (u * high).long().clamp_max(int(high) - 1)


class DiffAugment:
    """Apply the same kind of random, differentiable augmentation to every batch D sees.

    policy: list like ["color", "translation", "cutout"] (or a comma string). Images in [-1, 1],
    shape B x C x H x W with C = 1 or 3. Each sample gets its own random parameters; gradients
    flow to the pixel values (needed so G learns through the augmented fake batch).
    """

    def __init__(self, policy: list[str] | str, translation_ratio: float = 0.125, cutout_ratio: float = 0.5):
        if isinstance(policy, str):
            policy = [p.strip() for p in policy.split(",") if p.strip()]
        bad = [p for p in policy if p not in POLICIES]
        if bad:
            raise DataError(f"unknown DiffAugment policy {bad}; valid: {', '.join(POLICIES)}")
        self.policy = list(policy)
        self.translation_ratio = translation_ratio
        self.cutout_ratio = cutout_ratio

    def __bool__(self) -> bool:
        return bool(self.policy)

    def __repr__(self) -> str:
        return f"DiffAugment({self.policy})"

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        for p in self.policy:
            x = getattr(self, f"_{p}")(x, generator)
        return x

    # -------------------------------------------------------------- ops
    def _color(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        b = x.shape[0]
        x = x + (_rand((b, 1, 1, 1), x, g) - 0.5)                       # brightness +-0.5
        if x.shape[1] > 1:                                              # saturation x[0, 2]
            m = x.mean(dim=1, keepdim=True)
            x = (x - m) * (_rand((b, 1, 1, 1), x, g) * 2) + m
        m = x.mean(dim=(1, 2, 3), keepdim=True)                         # contrast x[0.5, 1.5]
        return (x - m) * (_rand((b, 1, 1, 1), x, g) + 0.5) + m

    def _translation(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        b, c, h, w = x.shape
        sy, sx = int(h * self.translation_ratio + 0.5), int(w * self.translation_ratio + 0.5)
        if sy == 0 and sx == 0:
            return x
        ty = _randint(2 * sy + 1, (b, 1, 1), x, g) - sy                 # shift in [-sy, sy]
        tx = _randint(2 * sx + 1, (b, 1, 1), x, g) - sx
        # Output pixel (i, j) reads input (i - ty, j - tx) from a zero-padded copy: a pure gather,
        # so the gradient reaches every pixel value that was moved.
        padded = torch.nn.functional.pad(x, (sx, sx, sy, sy))
        iy = torch.arange(h, device=x.device).view(1, h, 1) + sy - ty    # b x h x 1
        ix = torch.arange(w, device=x.device).view(1, 1, w) + sx - tx    # b x 1 w
        bi = torch.arange(b, device=x.device).view(b, 1, 1)
        out = padded.permute(0, 2, 3, 1)[bi, iy, ix]                     # b x h x w x c
        return out.permute(0, 3, 1, 2)

    def _cutout(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        b, _, h, w = x.shape
        ch, cw = int(h * self.cutout_ratio + 0.5), int(w * self.cutout_ratio + 0.5)
        # The square's top-left corner may hang off the edge, as in the paper: the visible hole
        # is then smaller, which varies the amount removed.
        y0 = _randint(h + (1 - ch % 2), (b, 1, 1), x, g) - ch // 2
        x0 = _randint(w + (1 - cw % 2), (b, 1, 1), x, g) - cw // 2
        yy = torch.arange(h, device=x.device).view(1, h, 1)
        xx = torch.arange(w, device=x.device).view(1, 1, w)
        hole = (yy >= y0) & (yy < y0 + ch) & (xx >= x0) & (xx < x0 + cw)  # b x h x w
        return x * (~hole).unsqueeze(1).to(x.dtype)
