"""Experience replay for D (Shrivastava et al. 2017; Pfau & Vinyals 2016): a fraction of each fake batch comes from past generators, so D cannot forget old modes and G cannot cycle back to them."""
from __future__ import annotations

from typing import Any

import torch

CAPACITY_BATCHES = 16  # the buffer holds this many batches of past fakes


class ReplayBuffer:
    """``mix(fake)`` returns the batch with ``fraction`` of it replaced by stored past fakes, then stores
    a random part of the new batch. Everything stays on the device; the fill count is a host int."""

    def __init__(self, fraction: float, batch_size: int, device: torch.device | str = "cpu",
                 capacity: int | None = None):
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"replay must be in [0, 1): the fraction of each fake batch drawn from the buffer, got {fraction}")
        self.fraction = fraction
        self.k = int(round(fraction * batch_size))
        self.capacity = capacity or CAPACITY_BATCHES * max(self.k, 1)
        self.device = torch.device(device)
        self.store: torch.Tensor | None = None
        self.filled = 0      # slots holding a sample
        self.cursor = 0      # next slot to overwrite once full (oldest first)

    def mix(self, fake: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        fake = fake.detach()
        k = min(self.k, fake.shape[0])
        out = fake
        if k and self.filled >= k:
            idx = torch.randint(0, self.filled, (k,), device=fake.device, generator=generator)
            out = torch.cat([self.store[idx].to(fake.dtype), fake[k:]])
        self._push(fake[:k] if k else fake[:0])
        return out

    def _push(self, x: torch.Tensor) -> None:
        if not len(x):
            return
        if self.store is None:
            self.store = torch.empty((self.capacity, *x.shape[1:]), device=x.device, dtype=x.dtype)
        for row in range(len(x)):  # k is small (a fraction of one batch): a loop of slice copies
            self.store[self.cursor] = x[row]
            self.cursor = (self.cursor + 1) % self.capacity
            self.filled = min(self.filled + 1, self.capacity)

    def state_dict(self) -> dict[str, Any]:
        return {"store": None if self.store is None else self.store[: self.filled].cpu().clone(),
                "cursor": self.cursor, "filled": self.filled}

    def load_state_dict(self, s: dict[str, Any]) -> None:
        self.filled, self.cursor = int(s.get("filled", 0)), int(s.get("cursor", 0))
        st = s.get("store")
        if st is not None and self.filled:
            self.store = torch.empty((self.capacity, *st.shape[1:]), device=self.device, dtype=st.dtype)
            self.store[: self.filled] = st.to(self.device)
