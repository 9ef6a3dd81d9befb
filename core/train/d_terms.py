"""The discriminator-side extras of a step: adaptive augmentation (ADA), FastGAN's reconstruction loss, R2, and rpgan's real logits for G.

Kept out of ``Trainer._step`` so the step reads as the textbook loop; each piece is off (and
costs nothing) unless its config field asks for it.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..config import TrainConfig
from ..data.ada import AdaptiveAugment
from ..losses import r2_penalty_fp32


class DTerms:
    """ADA's pipeline and p, the reconstruction weight of a self-supervised D, and R2 on fakes."""

    def __init__(self, cfg: TrainConfig, D: nn.Module, device: torch.device):
        self.ada = AdaptiveAugment(cfg.ada_target, device) if cfg.ada_target > 0 else None
        # Only a discriminator with decoders (arch=fastgan) has a reconstruction loss to weigh.
        self.recon_weight = cfg.recon_weight if getattr(D, "self_supervised", False) else 0.0
        self.r2_weight = cfg.r2_weight
        self.last: dict[str, torch.Tensor] = {}

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """ADA on any batch D sees (reals, fakes, G's fakes alike): p is the same for all of them."""
        return self.ada(x) if self.ada is not None else x

    def d_real(self, D_fwd: Callable, real_in: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """D's logits on the real batch and, for a self-supervised D, its weighted reconstruction loss."""
        if not self.recon_weight:
            return D_fwd(real_in, y), None
        logits, rec = D_fwd(real_in, y, return_aux=True)
        self.last["loss/recon"] = rec.detach()
        return logits, self.recon_weight * rec

    def observe(self, d_real: torch.Tensor) -> None:
        if self.ada is not None:
            self.ada.observe(d_real)
            self.last["aug/p"] = self.ada.p.detach().clone()
            self.last["aug/rt"] = self.ada.rt.detach().clone()

    def r2(self, D: nn.Module, fake_in: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor | None:
        """gamma_2 / 2 * R2 on the fakes as D saw them (eager fp32, like R1), or None when off."""
        if self.r2_weight <= 0:
            return None
        r2 = r2_penalty_fp32(D, fake_in, y)
        self.last["r2"] = r2.detach()
        return 0.5 * self.r2_weight * r2

    def state_dict(self) -> dict[str, Any]:
        return {"ada": self.ada.state_dict() if self.ada is not None else None}

    def load_state_dict(self, s: dict[str, Any]) -> None:
        if self.ada is not None and (s or {}).get("ada"):
            self.ada.load_state_dict(s["ada"])
