"""Adaptive discriminator augmentation (Karras et al. 2020): non-leaking augmentations whose probability p follows D's overfitting.

Every image D sees (real and fake alike) goes through the same pipeline; each op is applied to
each image independently with probability ``p``. The ops are the ones the ADA paper shows do not
leak into the generator while p stays below about 0.8: x-flip, 90-degree rotations, integer
translation, brightness / contrast / saturation, and cutout. Each is a per-pixel gather or an
affine change of values, so gradients reach G through the augmented fake batch.

``p`` is tuned from the overfitting heuristic r_t = E[sign(D(real))]: every ``interval`` D steps,
p moves by ``batch * interval / ada_images`` towards more augmentation when r_t is above the
target and less when below. All of it stays on the device: no host sync per step.
"""
from __future__ import annotations

from typing import Any

import torch

# Images over which p may move by 1. The paper uses 500k (ada_kimg=500) for runs of tens of
# millions of images; our runs are 10-100x shorter (a 10-minute CPU run sees ~100k), so p must
# be able to react within one.
ADA_IMAGES = 100_000
INTERVAL = 4          # D steps between adjustments (the paper's ada_interval)
TRANSLATE = 0.125     # integer shift of up to this fraction of the size, like DiffAugment's
CUTOUT = 0.5          # side of the cutout square as a fraction of the size


def _u(shape: tuple[int, ...], x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    dev = g.device if g is not None else x.device
    return torch.rand(shape, generator=g, device=dev).to(x.device)


class AdaptiveAugment:
    """``aug(x)`` augments a batch in [-1, 1] with probability ``p`` per op and image; ``observe(d_real)``
    feeds the heuristic; ``p`` is a 0-d tensor on the device (``float(aug.p)`` syncs once)."""

    def __init__(self, target: float, device: torch.device | str = "cpu", p: float = 0.0,
                 interval: int = INTERVAL, ada_images: int = ADA_IMAGES, fixed: bool = False):
        if not 0.0 < target < 1.0:
            raise ValueError(f"ada_target must be between 0 and 1 (0.6 is typical), got {target}")
        self.target = float(target)
        self.interval = int(interval)
        self.ada_images = int(ada_images)
        self.fixed = fixed  # p held where it is (tests, a user who wants a constant probability)
        self.p = torch.tensor(float(p), device=device)
        self.rt = torch.tensor(0.0, device=device)      # the last adjustment's r_t, for the Monitor
        self._sign_sum = torch.zeros((), device=device)
        self._count = torch.zeros((), device=device)
        self._calls = 0

    # -------------------------------------------------------------- the heuristic
    @torch.no_grad()
    def observe(self, d_real_logits: torch.Tensor) -> None:
        """Accumulate sign(D(real)) of one D step; every ``interval`` calls, adjust p."""
        s = d_real_logits.detach().float()
        self._sign_sum += torch.sign(s).sum()
        self._count += s.numel()
        self._calls += 1
        if self._calls % self.interval:
            return
        rt = self._sign_sum / self._count.clamp_min(1)
        self.rt.copy_(rt)
        if not self.fixed:
            step = self._count / self.ada_images          # the images these calls saw, as a fraction
            self.p.add_(torch.sign(rt - self.target) * step).clamp_(0.0, 1.0)
        self._sign_sum.zero_()
        self._count.zero_()

    def state_dict(self) -> dict[str, Any]:
        return {"p": float(self.p), "rt": float(self.rt), "sign_sum": float(self._sign_sum),
                "count": float(self._count), "calls": self._calls, "target": self.target}

    def load_state_dict(self, s: dict[str, Any]) -> None:
        self.p.fill_(float(s["p"]))
        self.rt.fill_(float(s.get("rt", 0.0)))
        self._sign_sum.fill_(float(s.get("sign_sum", 0.0)))
        self._count.fill_(float(s.get("count", 0.0)))
        self._calls = int(s.get("calls", 0))

    # -------------------------------------------------------------- the pipeline
    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        b = x.shape[0]

        def chosen() -> torch.Tensor:  # (B,) bool: which images get this op (p is a tensor: no sync)
            return _u((b,), x, generator) < self.p

        x = self._xflip(x, chosen(), generator)
        x = self._rot90(x, chosen(), generator)
        x = self._translate(x, chosen(), generator)
        x = self._colour(x, chosen, generator)
        return self._cutout(x, chosen(), generator)

    @staticmethod
    def _where(mask: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.where(mask.view(-1, 1, 1, 1), a, b)

    def _xflip(self, x, on, g):
        return self._where(on, x.flip(3), x)

    def _rot90(self, x, on, g):
        if x.shape[2] != x.shape[3]:
            return x
        k = (_u((x.shape[0],), x, g) * 4).long().clamp_max(3) * on.long()  # 0 where not chosen
        out = x
        for turns in (1, 2, 3):
            out = self._where(k == turns, torch.rot90(x, turns, dims=(2, 3)), out)
        return out

    def _translate(self, x, on, g):
        b, _, h, w = x.shape
        sy, sx = max(1, int(h * TRANSLATE + 0.5)), max(1, int(w * TRANSLATE + 0.5))
        ty = ((_u((b,), x, g) * (2 * sy + 1)).long().clamp_max(2 * sy) - sy) * on.long()
        tx = ((_u((b,), x, g) * (2 * sx + 1)).long().clamp_max(2 * sx) - sx) * on.long()
        # Reflect padding, as the paper's pipeline: a zero border would tell D which images moved.
        padded = torch.nn.functional.pad(x, (sx, sx, sy, sy), mode="reflect")
        iy = torch.arange(h, device=x.device).view(1, h, 1) + sy - ty.view(b, 1, 1)
        ix = torch.arange(w, device=x.device).view(1, 1, w) + sx - tx.view(b, 1, 1)
        bi = torch.arange(b, device=x.device).view(b, 1, 1)
        return padded.permute(0, 2, 3, 1)[bi, iy, ix].permute(0, 3, 1, 2)

    def _colour(self, x, chosen, g):
        b = x.shape[0]
        dev = g.device if g is not None else x.device

        def normal() -> torch.Tensor:
            return torch.randn((b, 1, 1, 1), generator=g, device=dev).to(x.device, x.dtype)
        # Brightness +-0.2 (std), contrast and saturation x 2^N(0, 0.5) / 2^N(0, 1): the paper's ranges,
        # in [-1, 1] units. torch.where keeps images that were not chosen bit for bit.
        x = self._where(chosen(), x + normal() * 0.2, x)
        m = x.mean(dim=(1, 2, 3), keepdim=True)
        x = self._where(chosen(), (x - m) * torch.exp2(normal() * 0.5) + m, x)
        if x.shape[1] > 1:
            m = x.mean(dim=1, keepdim=True)
            x = self._where(chosen(), (x - m) * torch.exp2(normal()) + m, x)
        return x

    def _cutout(self, x, on, g):
        b, _, h, w = x.shape
        ch, cw = max(1, int(h * CUTOUT + 0.5)), max(1, int(w * CUTOUT + 0.5))
        cy = (_u((b, 1, 1), x, g) * h).long()
        cx = (_u((b, 1, 1), x, g) * w).long()
        yy = torch.arange(h, device=x.device).view(1, h, 1)
        xx = torch.arange(w, device=x.device).view(1, 1, w)
        hole = ((yy - cy).abs() * 2 < ch) & ((xx - cx).abs() * 2 < cw) & on.view(b, 1, 1)
        return x * (~hole).unsqueeze(1).to(x.dtype)
