"""What a config's automatic settings ("auto", 0 = auto) resolve to on this machine, for display."""
from __future__ import annotations

import torch

from .config import ConfigError, TrainConfig


def resolved_autos(cfg: TrainConfig, shared_cpu: bool = True) -> dict[str, str]:
    """``{field: what it resolves to}`` for each field of ``cfg`` left on automatic that is cheap to
    resolve without building the models: device, precision, threads, d_norm and the R1 weight."""
    from .estimate import resolve_device
    from .models.layers import resolve_d_norm
    from .train.device import choose_threads

    out: dict[str, str] = {}
    device = resolve_device(cfg.device)
    if cfg.device == "auto":
        out["device"] = device
    if cfg.precision == "auto":
        if device.startswith("cuda"):
            try:
                out["precision"] = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
            except (RuntimeError, AssertionError):  # a driver that cannot be asked: the run decides
                out["precision"] = "bf16 or fp16, as the GPU supports"
        else:
            out["precision"] = "fp32"
    if not cfg.threads and device == "cpu":
        out["threads"] = f"{choose_threads(cfg, shared_cpu=shared_cpu)} (adapts while training)"
    if cfg.d_norm == "auto":
        try:
            out["d_norm"] = resolve_d_norm(cfg)
        except ConfigError:  # validation names the field; this is only a hint
            pass
    if cfg.r1_auto:
        out["r1_weight"] = f"{cfg.r1_gamma():.3g}"
    return out
