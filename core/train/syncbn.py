"""Synchronised BatchNorm for DDP on any device (gloo on CPU included), switchable off for rank-0-only work.

torch.nn.SyncBatchNorm only runs on GPUs, and it syncs whenever it is in training mode, so a
rank-0-only forward (a diagnostic) in training mode would hang the other ranks. This version
all-reduces per-channel sum / sum of squares / count with a differentiable all-reduce (the
gradient of a sum over ranks is the sum of the ranks' gradients), which makes the forward and the
backward exactly those of one BatchNorm over the global batch, and syncs only inside ``bn_sync``.
"""
from __future__ import annotations

import contextlib
import threading

import torch
import torch.distributed as dist
from torch import nn

_state = threading.local()


@contextlib.contextmanager
def bn_sync(enabled: bool):
    """Within this block, GlobalBatchNorm layers (do / do not) synchronise statistics across ranks."""
    prev = getattr(_state, "enabled", False)
    _state.enabled = enabled
    try:
        yield
    finally:
        _state.enabled = prev


def _sync_active() -> bool:
    return getattr(_state, "enabled", False) and dist.is_available() and dist.is_initialized() \
        and dist.get_world_size() > 1


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks, differentiable. Ours rather than torch.distributed.nn.functional.all_reduce,
    which is deprecated (a FutureWarning on every DDP run) in favour of a private module."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()  # every rank's loss depends on every rank's statistics
        dist.all_reduce(grad)
        return grad


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm1d/2d whose training statistics cover the batch of every rank."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() not in (2, 3, 4, 5):
            raise ValueError(f"expected 2D-5D input (got {input.dim()}D)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and _sync_active()):
            return super().forward(x)
        dims = [0] + list(range(2, x.dim()))
        n_local = x.numel() // x.shape[1]
        xf = x.float()
        stats = torch.cat([xf.sum(dims), (xf * xf).sum(dims),
                           torch.full((1,), float(n_local), device=x.device)])
        stats = _AllReduceSum.apply(stats)
        c = x.shape[1]
        n = stats[-1]
        mean = stats[:c] / n
        var = (stats[c:2 * c] / n - mean * mean).clamp_min(0)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked + 1)
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), m)
                unbiased = var.detach() * n / (n - 1).clamp_min(1)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), m)
                self.num_batches_tracked.add_(1)
        shape = [1, c] + [1] * (x.dim() - 2)
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def convert_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm1d/2d in ``module`` by a GlobalBatchNorm with the same state."""
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)) and not isinstance(module, GlobalBatchNorm):
        new = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                              module.track_running_stats)
        new.load_state_dict(module.state_dict())
        new.train(module.training)
        return new
    for name, child in module.named_children():
        setattr(module, name, convert_batchnorm(child))
    return module
