"""Before the first step: refuse a run whose training step cannot fit in free memory, naming batch_size / resolution and a size that fits.

On a CPU an oversized step dies inside the allocator ("DefaultCPUAllocator: can't allocate memory")
or, worse, pushes the machine into swap; on CUDA the loop's half-batch retry exists, but a step
that cannot fit even at a fraction of the batch is better refused up front. The need is the
estimate's own count (core/estimate.py: weights, gradients, optimiser state, EMA, and the tensors
autograd keeps for backward, counted by running the real step at two small batches).
"""
from __future__ import annotations

import torch

from ..config import ConfigError, TrainConfig
from ..memory import free_memory_bytes  # noqa: F401 - re-exported: callers and tests patch it here
from ..units import human_bytes

# Steps this small cannot exhaust any machine the studio runs on; they skip the count (it costs a
# second or two at large sizes, nothing at these).
MIN_PIXELS_TO_CHECK = 2**20   # batch x resolution^2, e.g. batch 64 at 128 px
HEADROOM = 0.85               # of free memory a run may plan to use (the data, Python and the OS need the rest)


def check_fits(cfg: TrainConfig, channels: int, num_classes: int, device: torch.device,
               free: int | None = None) -> None:
    """ConfigError naming batch_size (and the sizes that fit) when the step needs more than HEADROOM of free memory."""
    if cfg.batch_size * cfg.resolution ** 2 < MIN_PIXELS_TO_CHECK:
        return
    free = free if free is not None else free_memory_bytes(device)
    if not free:
        return
    from ..estimate import estimate
    est = estimate(cfg, channels=channels, num_classes=num_classes, measure=False)
    need, budget = est.memory_bytes, HEADROOM * free
    if need <= budget:
        return
    per_image = est.activations_bytes / cfg.batch_size
    fit = int((budget - est.weights_bytes) // per_image) if per_image and budget > est.weights_bytes else 0
    fit_batch = 1 << (fit.bit_length() - 1) if fit >= 2 else 0
    hint = [f"batch_size={fit_batch}"] if fit_batch >= 2 else []
    if cfg.resolution > 16:
        hint.append(f"resolution={cfg.resolution // 2} (about 4x less per image)")
    raise ConfigError("batch_size", f"this run needs about {human_bytes(need)} of memory on {device.type} "
                                    f"(batch {cfg.batch_size} at {cfg.resolution} px: {human_bytes(est.activations_bytes)} "
                                    f"for the step, {human_bytes(est.weights_bytes)} for the networks and their optimiser "
                                    f"state) but {human_bytes(free)} is free. Try "
                                    + (" or ".join(hint) if hint else "smaller networks (g_width, d_width)") + ".")
