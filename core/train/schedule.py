"""R3GAN's cosine schedules: learning rates, Adam's beta2 and the R1/R2 weights as pure functions of images seen.

R3GAN (Huang et al. 2024, its training configs) moves the learning rate 2e-4 -> 5e-5, beta2
0.9 -> 0.99 and gamma (the R1 = R2 weight) to a tenth along one half-cosine over its first 20M
images, then holds them. Here ``schedule_images`` is that length and the ends are ``lr_end_factor``,
``beta2_end`` and ``gamma_end_factor``. Every value depends only on the config and the images seen
before the step, so a resumed run applies exactly the values the uninterrupted one did.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch

from ..config import TrainConfig

# core/train/loop.py's rollback (on_diverge=rollback) divides both learning rates by 4 once per run;
# the schedule rewrites the rates every step, so it keeps that division.
ROLLBACK_LR_SCALE = 0.25


def cosine(start: float, end: float, images: int, total: int) -> float:
    """start at 0 images, end at ``total`` and after, half a cosine in between (R3GAN's cosine_decay_with_warmup
    without warm-up or hold)."""
    t = min(1.0, max(0.0, images / total)) if total > 0 else 0.0
    return start + (end - start) * 0.5 * (1.0 - math.cos(math.pi * t))


class Values(NamedTuple):
    lr_g: float
    lr_d: float
    beta2: float
    r1: float
    r2: float


def values_at(cfg: TrainConfig, images: int, world_size: int = 1) -> Values:
    """The scheduled values after ``images`` training images (all ranks together); constants when off."""
    n = cfg.schedule_images
    f_lr = cosine(1.0, cfg.lr_end_factor, images, n)
    f_gamma = cosine(1.0, cfg.gamma_end_factor, images, n)
    beta2 = cosine(cfg.beta2, cfg.beta2_end, images, n) if cfg.beta2_end > 0 else cfg.beta2
    return Values(cfg.lr_g * f_lr, cfg.lr_d * f_lr, beta2, cfg.r1_gamma(world_size) * f_gamma, cfg.r2_weight * f_gamma)


class Schedule:
    """Writes the values for the images seen into the optimisers and the R1/R2 weights before each step."""

    def __init__(self, cfg: TrainConfig, world_size: int = 1):
        self.cfg, self.world_size = cfg, world_size

    def apply(self, t: Any) -> dict[str, torch.Tensor]:
        """Set ``t``'s (a Trainer's; not imported: the trainer imports this module) rates, beta2 and R1/R2 weights."""
        v = values_at(self.cfg, t.images_seen, self.world_size)
        scale = ROLLBACK_LR_SCALE if t.extra_state.get("rolled_back_at") else 1.0
        for opt, lr in ((t.opt_g, v.lr_g), (t.opt_d, v.lr_d)):
            for group in opt.param_groups:
                group["lr"] = lr * scale
                if "betas" in group:  # Adam; RMSprop (wgan) has no betas
                    group["betas"] = (group["betas"][0], v.beta2)
        t.regs.r1_gamma = v.r1
        t.terms.r2_weight = v.r2
        # lr/g and lr/d are logged from the optimisers already; these are the other two.
        return {"sched/gamma": torch.tensor(v.r1), "sched/r2": torch.tensor(v.r2), "sched/beta2": torch.tensor(v.beta2)}
