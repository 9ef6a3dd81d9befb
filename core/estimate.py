"""Before you press Start: parameter counts, FLOPs, memory and time per step of a config.

``estimate(cfg, channels, num_classes)`` builds the two networks on the CPU, counts
parameters, counts FLOPs of one discriminator update and one generator update on a batch
of two with ``torch.utils.flop_counter`` (forward + backward, scaled to the batch size and
``n_critic``), sums the bytes autograd saves for backward to estimate activation memory,
and — when ``measure`` is true — times two real steps on the chosen device (after one
warm-up step). No Streamlit here; the studio caches the result per config.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from .config import TrainConfig

# Rough sustained throughput used when a step is not timed (a job is busy on the device).
_ROUGH_FLOPS = {"cpu": 1.5e10, "cuda": 2.0e13, "mps": 2.0e12}


@dataclass
class Estimate:
    device: str
    params_g: int = 0
    params_d: int = 0
    flops_per_step: float = 0.0     # n_critic D updates + 1 G update, forward + backward
    weights_bytes: int = 0          # weights, grads, Adam moments, EMA copy
    activations_bytes: int = 0      # saved-for-backward tensors at the configured batch
    dataset_bytes: int = 0          # decoded uint8 images (when the image count is known)
    sec_per_step: float | None = None
    sec_source: str = ""            # "measured" | "rough, from FLOPs"
    notes: list[str] = field(default_factory=list)

    @property
    def memory_bytes(self) -> int:
        return self.weights_bytes + self.activations_bytes

    def total_seconds(self, steps: int) -> float | None:
        return None if self.sec_per_step is None else self.sec_per_step * steps


def resolve_device(name: str) -> str:
    """``auto`` → cuda, then mps, then cpu; anything else is returned as given."""
    if name != "auto":
        return name
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def _build(cfg: TrainConfig, channels: int, num_classes: int):
    from .models import build_models  # imported lazily: a missing models package only hides the estimate
    out = build_models(cfg, channels, num_classes)
    if isinstance(out, (tuple, list)):
        return out[0], out[1]
    return getattr(out, "G", None) or out.generator, getattr(out, "D", None) or out.discriminator


def _call(net, x, y):
    if y is None:
        return net(x)
    try:
        return net(x, y)
    except TypeError:
        return net(x)


def _scores(out) -> torch.Tensor:
    if isinstance(out, (tuple, list)):
        out = out[0]
    return out.float().reshape(out.shape[0], -1).mean(1)


def _step(G, D, cfg: TrainConfig, channels: int, num_classes: int, b: int, device: str,
          opt_g=None, opt_d=None, phase: str = "both") -> None:
    """One representative training step (losses differ by family but cost about the same)."""
    res = cfg.resolution
    y = torch.randint(0, num_classes, (b,), device=device) if cfg.conditional and num_classes > 1 else None
    real = torch.rand(b, channels, res, res, device=device) * 2 - 1
    penalty = cfg.loss == "wgan-gp" or cfg.r1_weight > 0
    if phase in ("both", "d"):
        for _ in range(cfg.n_critic if phase == "both" else 1):
            z = torch.randn(b, cfg.latent_dim, device=device)
            with torch.no_grad():
                fake = _call(G, z, y)
            if penalty:
                real = real.detach().requires_grad_(True)
            d_real = _scores(_call(D, real, y))
            d_fake = _scores(_call(D, fake, y))
            loss = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
            if penalty:
                (g,) = torch.autograd.grad(d_real.sum(), real, create_graph=True)
                loss = loss + g.pow(2).flatten(1).sum(1).mean()
            if opt_d is not None:
                opt_d.zero_grad(set_to_none=True)
            loss.backward()
            if opt_d is not None:
                opt_d.step()
    if phase in ("both", "g"):
        z = torch.randn(b, cfg.latent_dim, device=device)
        loss = F.softplus(-_scores(_call(D, _call(G, z, y), y))).mean()
        if opt_g is not None:
            opt_g.zero_grad(set_to_none=True)
        loss.backward()
        if opt_g is not None:
            opt_g.step()


@contextlib.contextmanager
def _threads(n: int):
    old = torch.get_num_threads()
    torch.set_num_threads(max(1, n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    elif device == "mps":
        torch.mps.synchronize()


def estimate(cfg: TrainConfig, channels: int = 3, num_classes: int = 0, measure: bool = True,
             image_count: int | None = None, threads: int | None = None) -> Estimate:
    """Estimate cost of ``cfg``; raises only for a config the models cannot build."""
    from torch.utils.flop_counter import FlopCounterMode

    channels = cfg.channels or channels or 3
    device = resolve_device(cfg.device)
    est = Estimate(device=device)
    nthreads = threads if threads is not None else (cfg.threads or 1)
    with _threads(nthreads):
        torch.manual_seed(0)
        G, D = _build(cfg, channels, num_classes)
        est.params_g = sum(p.numel() for p in G.parameters())
        est.params_d = sum(p.numel() for p in D.parameters())
        G.train()
        D.train()
        tiny = 2
        flops = {}
        for phase in ("d", "g"):
            with FlopCounterMode(display=False) as fc:
                _step(G, D, cfg, channels, num_classes, tiny, "cpu", phase=phase)
            flops[phase] = fc.get_total_flops()
        scale = cfg.batch_size / tiny
        est.flops_per_step = (cfg.n_critic * flops["d"] + flops["g"]) * scale

        saved: dict[str, int] = {"cur": 0}
        seen: set[int] = set()

        def pack(t: torch.Tensor):
            try:
                key = t.untyped_storage().data_ptr()
                if key not in seen:
                    seen.add(key)
                    saved["cur"] += t.untyped_storage().nbytes()
            except (RuntimeError, NotImplementedError):
                saved["cur"] += t.numel() * t.element_size()
            return t

        peak = 0
        for phase in ("d", "g"):
            saved["cur"] = 0
            seen.clear()
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                _step(G, D, cfg, channels, num_classes, tiny, "cpu", phase=phase)
            peak = max(peak, saved["cur"])
        est.activations_bytes = int(peak * scale)
        n_g, n_d = est.params_g, est.params_d
        est.weights_bytes = 4 * (4 * (n_g + n_d) + (n_g if cfg.ema > 0 else 0))
        if image_count:
            est.dataset_bytes = int(image_count) * channels * cfg.resolution ** 2

        if measure:
            try:
                b = cfg.batch_size if device != "cpu" else min(cfg.batch_size, 8)
                Gd, Dd = G.to(device), D.to(device)
                opt_g = torch.optim.Adam(Gd.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
                opt_d = torch.optim.Adam(Dd.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
                _step(Gd, Dd, cfg, channels, num_classes, b, device, opt_g, opt_d)  # warm-up
                _sync(device)
                t0 = time.perf_counter()
                for _ in range(2):
                    _step(Gd, Dd, cfg, channels, num_classes, b, device, opt_g, opt_d)
                _sync(device)
                est.sec_per_step = (time.perf_counter() - t0) / 2 * (cfg.batch_size / b)
                est.sec_source = "measured"
                if b != cfg.batch_size:
                    est.notes.append(f"timed at batch {b} on {device} and scaled to {cfg.batch_size}")
                if device != "cpu" and cfg.precision != "fp32":
                    est.notes.append("timed in fp32; mixed precision is usually faster")
            except Exception as e:  # a device that is busy or missing must not break the page
                est.notes.append(f"could not time a step on {device}: {type(e).__name__}: {e}")
        if est.sec_per_step is None:
            rate = _ROUGH_FLOPS.get(device.split(":")[0], _ROUGH_FLOPS["cpu"])
            est.sec_per_step = est.flops_per_step / rate
            est.sec_source = "rough, from FLOPs"
    return est


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def human_count(n: float) -> str:
    for unit, div in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.1f}{unit}"
    return f"{n:.0f}"


def human_duration(s: float | None) -> str:
    if s is None or s != s:
        return "—"
    s = float(s)
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 60:
        return f"{s:.1f} s"
    m, s = divmod(int(round(s)), 60)
    if m < 60:
        return f"{m} min {s:02d} s"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h} h {m:02d} min"
    d, h = divmod(h, 24)
    return f"{d} d {h} h"


def summary(est: Estimate, cfg: TrainConfig) -> dict[str, Any]:
    """Plain numbers for display."""
    return {
        "params_g": est.params_g, "params_d": est.params_d, "flops_per_step": est.flops_per_step,
        "memory_bytes": est.memory_bytes, "sec_per_step": est.sec_per_step,
        "total_s": est.total_seconds(cfg.steps),
        "img_per_s": (cfg.batch_size / est.sec_per_step) if est.sec_per_step else None,
    }
