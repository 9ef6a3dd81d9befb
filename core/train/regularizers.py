"""Lazy regularisation (StyleGAN2): R1 every k-th D step and path length every k-th G step, scaled by k.

Both terms are added to the loss of the step they fall on, so there is still one optimiser step
per minibatch. That is why Adam's betas and learning rate are *not* rescaled by c = k / (k + 1)
here: the paper's correction compensates for the extra optimiser step that a separate
regularisation pass adds every k minibatches (k + 1 steps behaving like k); folded into the
regular step, k minibatches are exactly k steps, and the k-fold weight alone keeps the penalty's
average strength.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..config import TrainConfig

PL_DECAY = 0.01  # pl_mean <- lerp(pl_mean, mean path length of the batch, 0.01)
PL_BATCH_SHRINK = 2  # the path-length pass uses half the batch (stylegan2-ada's pl_batch_shrink)


class LazyRegularizers:
    """When R1 / path-length regularisation is due, their weights, the running ``pl_mean``, and the
    last computed values (reported at every step, so a metrics window averages real values)."""

    def __init__(self, cfg: TrainConfig, G: nn.Module, device: torch.device, world_size: int = 1):
        self.r1_gamma = cfg.r1_gamma(world_size)
        self.r1_every = cfg.r1_every
        # Path length needs G's mapping/synthesis split (arch=stylegan2); other families ignore it.
        self.pl_weight = cfg.pl_weight if hasattr(G, "mapping") else 0.0
        self.pl_every = cfg.pl_every
        self.pl_mean = torch.zeros((), device=device)
        self.last: dict[str, torch.Tensor] = {}

    # ------------------------------------------------------------------ R1
    def r1_due(self, d_step: int) -> bool:
        return self.r1_gamma > 0 and d_step % self.r1_every == 0

    @property
    def r1_scale(self) -> float:
        """Multiplier of the R1 penalty in D's loss: gamma / 2, times k when lazy."""
        return 0.5 * self.r1_gamma * self.r1_every

    # ------------------------------------------------------------------ path length
    def pl_due(self, g_step: int) -> bool:
        return self.pl_weight > 0 and g_step % self.pl_every == 0

    def path_length_term(self, G: nn.Module, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """pl_weight * k * mean (|J_w^T u| - pl_mean)^2 (Karras et al. 2020, eq. 4), u ~ N(0, I) / sqrt(HW).

        An eager fp32 pass with autocast off: it is a gradient differentiated again, which fp16
        would underflow (the inner gradient is not loss-scaled), and a compiled G has no double
        backward. Style mixing applies as in G's training forward.
        """
        n = max(1, z.shape[0] // PL_BATCH_SHRINK)
        z, y = z[:n], (y[:n] if y is not None else None)
        with torch.autocast(device_type=z.device.type, enabled=False):
            ws = G.mapping(z, y)
            if G.training and G.style_mixing > 0:
                ws = G.mix(ws, z, y)
            img = G.synthesis(ws).float()
            # Not randn_like: on a channels_last image it would draw in NHWC order, so the fast path
            # would see other noise than the plain one.
            noise = torch.randn(img.shape, device=img.device) / math.sqrt(img.shape[2] * img.shape[3])
            (grad,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
            lengths = grad.float().square().sum(dim=2).mean(dim=1).sqrt()
            pl_mean = self.pl_mean.lerp(lengths.mean(), PL_DECAY)
            self.pl_mean.copy_(pl_mean.detach())
            penalty = (lengths - pl_mean).square().mean()
        self.last["loss/pl"] = penalty.detach()
        self.last["pl/mean"] = self.pl_mean.detach().clone()
        return penalty * (self.pl_weight * self.pl_every)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {"pl_mean": self.pl_mean.detach().cpu().clone(),
                "last": {k: v.detach().cpu().clone() for k, v in self.last.items()}}

    def load_state_dict(self, s: dict[str, Any]) -> None:
        dev = self.pl_mean.device
        self.pl_mean = torch.as_tensor(s.get("pl_mean", 0.0), dtype=torch.float32).to(dev).clone()
        self.last = {k: torch.as_tensor(v).to(dev) for k, v in (s.get("last") or {}).items()}
