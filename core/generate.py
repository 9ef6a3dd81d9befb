"""Load a trained generator from a run folder or checkpoint and generate images reproducibly."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .config import TrainConfig
from .models import build_models
from .train.checkpoint import CheckpointError, latest_valid_checkpoint, load_checkpoint


@dataclass
class LoadedGenerator:
    G: nn.Module
    cfg: TrainConfig
    step: int
    channels: int
    num_classes: int
    source: Path
    class_names: list[str]
    uses_ema: bool


def load_generator(path: str | Path, map_location: str | torch.device = "cpu") -> LoadedGenerator:
    """``path`` is a run folder (latest valid checkpoint), a checkpoint file, or best.pt; EMA preferred."""
    p = Path(path)
    if p.is_dir():
        found = latest_valid_checkpoint(p / "checkpoints", map_location)
        if found is None:
            raise CheckpointError(f"{p} has no usable checkpoint yet (train it longer, or wait for the first save)")
        ckpt_path, state = found
    else:
        ckpt_path, state = p, load_checkpoint(p, map_location)
    return generator_from_state(state, ckpt_path)


def generator_from_state(state: dict[str, Any], source: Path) -> LoadedGenerator:
    cfg = TrainConfig.from_dict(state["config"])
    ds = state["dataset"]
    G, _ = build_models(cfg, ds["channels"], ds["num_classes"])
    weights = state["G_ema"]["model"] if state.get("G_ema") else state["G"]
    G.load_state_dict(weights)
    G.eval().requires_grad_(False)
    names = list(ds.get("class_names") or [])
    return LoadedGenerator(G, cfg, int(state["step"]), ds["channels"], ds["num_classes"], Path(source), names,
                           bool(state.get("G_ema")))


def latents(seeds: list[int], dim: int, truncation: float = 1.0) -> torch.Tensor:
    """One z per seed, independent of how many are asked for (seed s always gives the same z).

    Truncation psi < 1 resamples components outside [-2, 2] (truncated normal) then scales by psi,
    pulling samples toward the mean latent: higher fidelity, less variety.
    """
    zs = []
    for s in seeds:
        g = torch.Generator().manual_seed(int(s))
        z = torch.randn(dim, generator=g)
        if truncation < 1.0:
            bad = z.abs() > 2.0
            while bool(bad.any()):
                z[bad] = torch.randn(int(bad.sum()), generator=g)
                bad = z.abs() > 2.0
            z = z * truncation
        zs.append(z)
    return torch.stack(zs)


@torch.no_grad()
def generate(G: nn.Module, z: torch.Tensor, y: torch.Tensor | None = None, batch_size: int = 64) -> torch.Tensor:
    """Images in [-1, 1] for the latents ``z`` (batched so any count fits in memory), on the CPU."""
    dev = next(G.parameters()).device
    out = []
    for i in range(0, len(z), batch_size):
        zb = z[i:i + batch_size].to(dev)
        yb = y[i:i + batch_size].to(dev) if y is not None else None
        out.append(G(zb, yb).float().cpu())
    return torch.cat(out) if out else torch.empty(0)
