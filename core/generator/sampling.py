"""Images from a loaded generator: seeds -> latents -> images (z- or w-space truncation, style mixing), reproducibly
(writing them: core/generator/writer.py)."""
from __future__ import annotations

import math

import torch
from torch import nn

from ..config import ConfigError
from ..imaging import to_uint8
from .loaded import LoadedGenerator, class_labels


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
    return torch.stack(zs) if zs else torch.empty(0, dim)


def is_style_based(G: nn.Module) -> bool:
    """True for generators with a mapping network and per-layer styles (arch=stylegan2)."""
    return all(hasattr(G, a) for a in ("mapping", "synthesis", "num_ws", "w_avg"))


def truncation_space(G: nn.Module) -> str:
    """Where truncation psi acts: "w" (toward the tracked average style w_avg) or "z" (a truncated normal)."""
    return "w" if is_style_based(G) else "z"


@torch.no_grad()
def generate(G: nn.Module, z: torch.Tensor, y: torch.Tensor | None = None, batch_size: int = 64,
             truncation_psi: float = 1.0) -> torch.Tensor:
    """Images in [-1, 1] for the latents ``z`` (batched so any count fits in memory), on the CPU.

    ``truncation_psi`` < 1 is w-space truncation and needs a style-based G; z-space families get
    their truncation from ``latents(..., truncation)`` instead.
    """
    if truncation_psi != 1.0 and not is_style_based(G):
        raise ValueError("truncation_psi applies in w-space (arch=stylegan2); truncate z with latents() for this generator")
    dev = next(G.parameters()).device
    out = []
    for i in range(0, len(z), batch_size):
        zb = z[i:i + batch_size].to(dev)
        yb = y[i:i + batch_size].to(dev) if y is not None else None
        x = G.synthesis(G.mapping(zb, yb, truncation_psi=truncation_psi)) if truncation_psi != 1.0 else G(zb, yb)
        out.append(x.float().cpu())
    return torch.cat(out) if out else torch.empty(0)


def generate_seeds(g: LoadedGenerator, seeds: list[int], truncation: float = 1.0,
                   class_id: int | str | None = None, batch_size: int = 64) -> torch.Tensor:
    """Images in [-1, 1] for ``seeds``: the same seed, truncation and class always give the same image.

    Truncation acts in w-space for style-based generators (psi = 0: the w_avg image for every seed),
    in z-space for the others (see ``truncation_space``)."""
    labels = class_labels(g, seeds, class_id)
    if is_style_based(g.G):
        return generate(g.G, latents(seeds, g.latent_dim), labels, batch_size, truncation_psi=truncation)
    return generate(g.G, latents(seeds, g.latent_dim, truncation), labels, batch_size)


# ------------------------------------------------------------------ style mixing
LAYER_GROUPS = ("coarse", "middle", "fine")


def layer_groups(G: nn.Module) -> dict[str, list[int]]:
    """The w indices of the coarse / middle / fine styles of a style-based G.

    As in the StyleGAN paper at 1024 px: coarse = the 4-8 px layers (pose, shape), middle = 16-32 px
    (features), fine = 64 px and up (colour, texture). Below 64 px there are fewer levels, so the
    split is by level instead: 32 px: 4-8 / 16 / 32; 16 px: 4 / 8 / 16. No group is ever empty.
    """
    levels = int(math.log2(G.resolution)) - 1  # 4, 8, ..., R
    n_coarse = min(2, levels - 2)
    n_middle = min(2, levels - 1 - n_coarse)
    groups: dict[str, list[int]] = {k: [] for k in LAYER_GROUPS}
    for i in range(G.num_ws):
        lvl = int(math.log2(G.layer_resolution(i))) - 2
        key = "coarse" if lvl < n_coarse else "middle" if lvl < n_coarse + n_middle else "fine"
        groups[key].append(i)
    return groups


def parse_layers(spec: str, G: nn.Module) -> list[int]:
    """``"coarse"``, ``"middle"``, ``"fine"``, ``"0-3"``, ``"5"`` or a comma list of those -> sorted w indices."""
    groups = layer_groups(G)
    out: set[int] = set()
    for part in (p.strip().lower() for p in str(spec).split(",")):
        if part in groups:
            out.update(groups[part])
            continue
        try:
            lo, _, hi = part.partition("-")
            a, b = int(lo), int(hi or lo)
        except ValueError:
            raise ConfigError("--mix-layers", f"expected coarse, middle, fine, N or N-M (comma-separated), got {part!r}") from None
        if not 0 <= a <= b < G.num_ws:
            raise ConfigError("--mix-layers", f"layers must be in 0-{G.num_ws - 1} for this {G.resolution} px generator "
                                              f"({G.num_ws} styles), got {part!r}")
        out.update(range(a, b + 1))
    if not out:
        raise ConfigError("--mix-layers", "name at least one layer")
    return sorted(out)


@torch.no_grad()
def mix_styles(G: nn.Module, z_src: torch.Tensor, z_style: torch.Tensor, layers: list[int],
               y: torch.Tensor | None = None, truncation_psi: float = 1.0) -> torch.Tensor:
    """Images of ``z_src`` whose w at ``layers`` comes from ``z_style`` (row i mixes z_src[i] with z_style[i]).

    For a mixing grid: repeat the sources over the columns and the style latents over the rows.
    """
    if not is_style_based(G):
        raise ValueError("style mixing needs a style-based generator (arch=stylegan2)")
    dev = next(G.parameters()).device
    ya = y.to(dev) if y is not None else None
    ws = G.mapping(z_src.to(dev), ya, truncation_psi=truncation_psi)
    ws_b = G.mapping(z_style.to(dev), ya, truncation_psi=truncation_psi)
    take = torch.zeros(G.num_ws, dtype=torch.bool, device=dev)
    take[list(layers)] = True
    return G.synthesis(torch.where(take[None, :, None], ws_b, ws)).float().cpu()


def style_mix_seeds(g: LoadedGenerator, seeds: list[int], style_seed: int, layers: str | list[int] = "coarse",
                    truncation: float = 1.0, class_id: int | str | None = None) -> torch.Tensor:
    """Each of ``seeds`` with the styles of ``style_seed`` at ``layers`` (names, ranges or indices)."""
    if not is_style_based(g.G):
        raise ConfigError("--style-mix", f"style mixing needs arch=stylegan2 (this generator is {g.cfg.arch}: "
                                         "it has no per-layer styles)")
    idx = parse_layers(layers, g.G) if isinstance(layers, str) else list(layers)
    z_b = latents([style_seed], g.latent_dim).expand(len(seeds), -1)
    return mix_styles(g.G, latents(seeds, g.latent_dim), z_b, idx, class_labels(g, seeds, class_id), truncation)


def image_array(img: torch.Tensor):
    """One (C, H, W) image in [-1, 1] (or uint8) -> an HxW or HxWx3 uint8 numpy array."""
    arr = to_uint8(img[None])[0].numpy()
    return arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0)
