"""Exponential moving average of the generator's weights (used for samples and export)."""
from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """Keeps ``self.model`` = EMA of a source model's parameters; buffers (BatchNorm running
    statistics) are copied, as averaging them lags behind the weights they belong to."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        # Warm-up: early on the average would be dominated by the random initialisation.
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        ema_p = [p for p in self.model.parameters()]
        src_p = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(ema_p, src_p, 1.0 - d)
        for eb, sb in zip(self.model.buffers(), model.buffers()):
            eb.copy_(sb)

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "updates": self.updates, "decay": self.decay}

    def load_state_dict(self, s: dict) -> None:
        self.model.load_state_dict(s["model"])
        self.updates = int(s["updates"])
