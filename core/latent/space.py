"""Latent-space tools: seeds -> z, lerp/slerp paths and loops, random walks, per-dimension and PCA
edits, and a small LRU cache of rendered samples."""
from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..generator import LoadedGenerator, class_labels, generate, is_style_based, latents

# GIF/PNG output and the nearest-training-image search live in their own modules; re-exported here so
# `core.latent` stays the one import path for the latent explorer.


INTERP_MODES = ("lerp", "slerp")


# ------------------------------------------------------------------ seeds and truncation
def seeds_to_z(seeds: Sequence[int], dim: int, psi: float = 1.0) -> torch.Tensor:
    """(len(seeds), dim) latents; seed s always gives the same z (see core.generate.latents).

    ``psi`` < 1 samples each z from a normal truncated to [-2, 2] and pulls it toward the mean
    latent (zero for the Gaussian prior): psi = 0 gives the mean latent for every seed.
    """
    return latents([int(s) for s in seeds], dim, float(psi))


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Linear interpolation; t may be a (T,) tensor, giving (T, *a.shape)."""
    t = torch.as_tensor(t, dtype=a.dtype)
    if t.dim() == 0:
        return a + t * (b - a)
    t = t.view(-1, *([1] * a.dim()))
    return a[None] + t * (b - a)[None]


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation (White 2016): stays on the shell where Gaussian latents live.

    Interpolates the direction along the great circle and the norm linearly, so the endpoints are
    exactly ``a`` and ``b``; falls back to lerp for (anti)parallel or zero vectors.
    """
    t = torch.as_tensor(t, dtype=a.dtype)
    scalar = t.dim() == 0
    t = t.reshape(-1)
    na, nb = a.norm(), b.norm()
    if float(na) < eps or float(nb) < eps:
        out = lerp(a, b, t)
        return out[0] if scalar else out
    ua, ub = a / na, b / nb
    dot = torch.clamp((ua * ub).sum(), -1.0, 1.0)
    omega = torch.arccos(dot)
    so = torch.sin(omega)
    if float(so) < 1e-4:
        out = lerp(a, b, t)
        return out[0] if scalar else out
    tt = t.view(-1, *([1] * a.dim()))
    direction = (torch.sin((1 - tt) * omega) / so) * ua[None] + (torch.sin(tt * omega) / so) * ub[None]
    norm = na + tt * (nb - na)
    out = direction * norm
    # Exact endpoints (floating point would otherwise give a ~1e-7 difference).
    out = torch.where(tt == 0, a[None].expand_as(out), out)
    out = torch.where(tt == 1, b[None].expand_as(out), out)
    return out[0] if scalar else out


def interpolate(z0: torch.Tensor, z1: torch.Tensor, steps: int, mode: str = "slerp") -> torch.Tensor:
    """(steps, D) latents from z0 to z1 inclusive; the first is exactly z0 and the last exactly z1."""
    if mode not in INTERP_MODES:
        raise ValueError(f"unknown interpolation {mode!r}; valid: {', '.join(INTERP_MODES)}")
    steps = max(2, int(steps))
    t = torch.linspace(0.0, 1.0, steps)
    path = lerp(z0, z1, t) if mode == "lerp" else slerp(z0, z1, t)
    path[0], path[-1] = z0, z1
    return path


def loop_path(zs: torch.Tensor, frames_per_segment: int, mode: str = "slerp") -> torch.Tensor:
    """A closed tour through the latents ``zs`` (K, D): z0 -> z1 -> ... -> z0, without repeating a frame,
    so a looping GIF has no stutter."""
    k = zs.shape[0]
    if k < 2:
        raise ValueError("a loop needs at least two latents")
    n = max(2, int(frames_per_segment))
    segs = [interpolate(zs[i], zs[(i + 1) % k], n + 1, mode)[:-1] for i in range(k)]
    return torch.cat(segs)


def random_walk(z0: torch.Tensor, n_frames: int, step_size: float = 0.15, seed: int = 0,
                loop: bool = True) -> torch.Tensor:
    """(n_frames, D) latents: a smooth random walk from z0 (momentum-smoothed steps, renormalised so
    the latents stay on the Gaussian shell). With ``loop`` the walk bends back to end beside z0."""
    g = torch.Generator().manual_seed(int(seed))
    d = z0.numel()
    radius = math.sqrt(d)
    frames = [z0.clone()]
    z, v = z0.clone(), torch.zeros_like(z0)
    for _ in range(max(1, int(n_frames)) - 1):
        v = 0.8 * v + 0.2 * torch.randn(z0.shape, generator=g)
        z = z + step_size * radius * v / max(1e-6, float(v.norm()))
        z = z * (radius / max(1e-6, float(z.norm())))
        frames.append(z.clone())
    out = torch.stack(frames)
    if loop and len(out) > 2:
        # Blend the walk back toward its start over the second half, so the GIF loops smoothly.
        n = len(out)
        w = torch.clamp((torch.arange(n, dtype=out.dtype) - n / 2) / (n / 2), 0, 1).view(-1, *([1] * z0.dim()))
        w = 0.5 - 0.5 * torch.cos(math.pi * w)  # ease in/out
        out = (1 - w) * out + w * z0[None]
    return out


# ------------------------------------------------------------------ edits
def edit_dims(z: torch.Tensor, values: dict[int, float], mode: str = "set") -> torch.Tensor:
    """Change chosen latent dimensions: ``mode`` "set" writes the values, "add" adds them."""
    out = z.clone()
    for i, v in values.items():
        if mode == "add":
            out[..., int(i)] += float(v)
        else:
            out[..., int(i)] = float(v)
    return out


@dataclass
class Directions:
    """Principal directions in z space (GANSpace-style), strongest first."""

    vectors: torch.Tensor      # (k, latent_dim), unit length
    explained: torch.Tensor    # (k,) fraction of the feature variance each component explains
    layer: str                 # which layer's activations the PCA ran on
    samples: int


def edit_directions(z: torch.Tensor, directions: Directions | torch.Tensor, coeffs: Sequence[float]) -> torch.Tensor:
    """z + sum_k c_k * u_k; the u_k are unit vectors, so c_k is in standard deviations of the prior."""
    vecs = directions.vectors if isinstance(directions, Directions) else directions
    c = torch.as_tensor(list(coeffs), dtype=z.dtype)[: len(vecs)]
    return z + (c[:, None] * vecs[: len(c)].to(z)).sum(0)


def _feature_layer(G: nn.Module) -> tuple[str, nn.Module]:
    """The earliest layer whose output is a non-linear function of z: a style-based G's mapping
    network (w), else the first ReLU-like module, else the first Linear / (transposed) conv layer."""
    if is_style_based(G) and isinstance(getattr(G, "mapping_net", None), nn.Module):
        # GANSpace on StyleGAN takes its PCA in w: the mapping network's output (its layers use
        # functional activations, so there is no ReLU module to hook).
        return "mapping_net", G.mapping_net
    mods = list(G.named_modules())
    for name, m in mods:
        if isinstance(m, (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.ELU)):
            return name, m
    for name, m in mods:
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            return name, m
    raise ValueError("the generator has no layer to take features from")


@torch.no_grad()
def early_features(G: nn.Module, z: torch.Tensor, y: torch.Tensor | None = None,
                   batch_size: int = 256) -> tuple[torch.Tensor, str]:
    """(N, F) activations of G's first non-linear layer for latents z, and that layer's name."""
    name, layer = _feature_layer(G)
    grabbed: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda m, i, o: grabbed.append(o.detach().float().flatten(1).cpu()))
    try:
        generate(G, z, y, batch_size)
    finally:
        handle.remove()
    return torch.cat(grabbed), name


@torch.no_grad()
def principal_directions(g: LoadedGenerator, k: int = 8, n_samples: int = 512, seed: int = 0,
                         class_id: int | str | None = None) -> Directions:
    """GANSpace (Härkönen et al. 2020): PCA of early-layer activations over many random latents,
    then each principal component is carried back to z space by least-squares regression of the
    PCA coordinates on z. Returns unit directions in z space, strongest first."""
    dim = g.latent_dim
    gen = torch.Generator().manual_seed(int(seed))
    z = torch.randn(max(n_samples, dim + 2), dim, generator=gen)
    y = class_labels(g, list(range(len(z))), class_id)
    feats, name = early_features(g.G, z, y)
    feats = feats.double()
    feats = feats - feats.mean(0, keepdim=True)
    k = max(1, min(int(k), dim, feats.shape[1]))
    # Principal axes of the features (economy SVD; features may be wide, samples are few).
    _, s, vh = torch.linalg.svd(feats, full_matrices=False)
    coords = feats @ vh[:k].T  # (N, k) PCA coordinates
    var = s ** 2
    explained = (var[:k] / var.sum().clamp_min(1e-12)).float()
    zc = (z.double() - z.double().mean(0, keepdim=True))
    u = torch.linalg.lstsq(zc, coords).solution  # (dim, k): z-direction that best predicts each coordinate
    vecs = (u / u.norm(dim=0, keepdim=True).clamp_min(1e-12)).T.float()  # (k, dim)
    return Directions(vecs.contiguous(), explained, name, int(len(z)))


# ------------------------------------------------------------------ generation with a cache
class SampleCache:
    """A small thread-safe LRU of generated images keyed by (run, checkpoint, seed, psi, class)."""

    def __init__(self, max_items: int = 2048):
        self.max_items = max_items
        self._d: OrderedDict[Hashable, torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> torch.Tensor | None:
        with self._lock:
            v = self._d.get(key)
            if v is not None:
                self._d.move_to_end(key)
                self.hits += 1
            else:
                self.misses += 1
            return v

    def put(self, key: Hashable, value: torch.Tensor) -> None:
        with self._lock:
            self._d[key] = value
            self._d.move_to_end(key)
            while len(self._d) > self.max_items:
                self._d.popitem(last=False)

    def __len__(self) -> int:
        return len(self._d)

    def clear(self) -> None:
        with self._lock:
            self._d.clear()


def cache_key_prefix(g: LoadedGenerator) -> tuple[str, str]:
    """(run, checkpoint) identity of a loaded generator, including the file's modification time."""
    try:
        mtime = g.source.stat().st_mtime_ns
    except OSError:
        mtime = 0
    return (str(g.run_dir or g.source.parent), f"{g.source}@{mtime}")


def sample_seeds(g: LoadedGenerator, seeds: Sequence[int], psi: float = 1.0, class_id: int | str | None = None,
                 cache: SampleCache | None = None, batch_size: int = 64) -> torch.Tensor:
    """Images (len(seeds), C, H, W) for seeds, generating only the ones missing from ``cache``, in batches."""
    seeds = [int(s) for s in seeds]
    prefix = cache_key_prefix(g) if cache is not None else None
    cls = None if class_id in (None, "") else str(class_id)
    keys = [(*prefix, s, round(float(psi), 6), cls) for s in seeds] if prefix else [None] * len(seeds)
    have: dict[int, torch.Tensor] = {}
    if cache is not None:
        for i, k in enumerate(keys):
            v = cache.get(k)
            if v is not None:
                have[i] = v
    todo = [i for i in range(len(seeds)) if i not in have]
    if todo:
        sub = [seeds[i] for i in todo]
        w_space = is_style_based(g.G)  # psi pulls w toward w_avg there, not z toward 0
        z = seeds_to_z(sub, g.latent_dim, 1.0 if w_space else psi)
        imgs = generate(g.G, z, class_labels(g, sub, class_id), batch_size,
                        truncation_psi=float(psi) if w_space else 1.0)
        for i, img in zip(todo, imgs):
            have[i] = img
            if cache is not None:
                cache.put(keys[i], img)
    if not seeds:
        return torch.empty(0, g.channels, g.resolution, g.resolution)
    return torch.stack([have[i] for i in range(len(seeds))])


def render(g: LoadedGenerator, z: torch.Tensor, class_id: int | str | None = None, seed_for_class: int = 0,
           batch_size: int = 64, psi: float = 1.0) -> torch.Tensor:
    """Images for explicit latents z (B, D) (or one z (D,)); conditional models use ``class_id``
    (or the class of ``seed_for_class`` when none is chosen, matching sample_seeds).

    ``psi`` is the w-space truncation of a style-based G; z-space families ignore it (their z
    arrives truncated, see ``explorer_z``)."""
    if z.dim() == 1:
        z = z[None]
    y = class_labels(g, [seed_for_class] * len(z), class_id)
    return generate(g.G, z, y, batch_size, truncation_psi=float(psi) if is_style_based(g.G) else 1.0)
