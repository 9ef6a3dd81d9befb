"""Small collectives the training loop shares between ranks (every rank must call each one, in the same order)."""
from __future__ import annotations

import torch
import torch.distributed as dist


def any_across_ranks(flags: list[bool], device: torch.device) -> list[bool]:
    """Each flag OR-ed over every rank (one all-reduce); a collective: every rank must call it."""
    buf = torch.tensor([float(f) for f in flags])
    if device.type == "cuda":
        buf = buf.to(device)
    dist.all_reduce(buf, op=dist.ReduceOp.MAX)
    return [bool(v) for v in buf.tolist()]


def mean_across_ranks(window: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Average the logged window over ranks (same keys in the same order on every rank)."""
    keys = sorted(window)
    if not keys:
        return window
    buf = torch.stack([window[k].detach().float().reshape(()).to(device) for k in keys])
    dist.all_reduce(buf)
    buf /= dist.get_world_size()
    return dict(zip(keys, buf.unbind()))
