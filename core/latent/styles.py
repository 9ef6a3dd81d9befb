"""Style-based latents for the explorer: where truncation acts, paths in w, and the style-mixing grid."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from ..generator import LoadedGenerator, class_labels, is_style_based, latents, layer_groups, mix_styles

NO_MIXING = ("Style mixing needs a style-based generator (arch=stylegan2). This {arch} generator maps z straight "
             "to pixels, so it has no per-layer styles to swap; train a stylegan2 run to mix coarse, middle "
             "and fine styles.")


def truncation_note(g: LoadedGenerator) -> str:
    """One line for the UI: which space truncation ψ acts in for this generator."""
    if is_style_based(g.G):
        return "ψ: truncation in w (toward the average style w_avg): ψ = 0 gives the average image for every seed."
    return "ψ: truncation in z (a truncated normal scaled by ψ): ψ = 0 gives the image of z = 0 for every seed."


def explorer_z(g: LoadedGenerator, seeds: Sequence[int], psi: float = 1.0) -> torch.Tensor:
    """The latents z the explorer starts from: truncated in z for z-space families, untouched for
    style-based ones (their ψ is applied to w when rendering)."""
    return latents([int(s) for s in seeds], g.latent_dim, 1.0 if is_style_based(g.G) else float(psi))


@torch.no_grad()
def to_w(g: LoadedGenerator, z: torch.Tensor, psi: float = 1.0, class_id: int | str | None = None,
         seed_for_class: int = 0) -> torch.Tensor:
    """(B, num_ws, w_dim) styles of latents z (B, D), truncated toward w_avg by ψ."""
    if not is_style_based(g.G):
        raise ValueError(f"w-space needs a style-based generator (arch=stylegan2); this one is {g.cfg.arch}")
    if z.dim() == 1:
        z = z[None]
    dev = next(g.G.parameters()).device
    y = class_labels(g, [seed_for_class] * len(z), class_id)
    return g.G.mapping(z.to(dev), y.to(dev) if y is not None else None, truncation_psi=float(psi)).float().cpu()


@torch.no_grad()
def render_w(g: LoadedGenerator, ws: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Images in [-1, 1] for styles ws (B, num_ws, w_dim), on the CPU."""
    if not is_style_based(g.G):
        raise ValueError(f"w-space needs a style-based generator (arch=stylegan2); this one is {g.cfg.arch}")
    dev = next(g.G.parameters()).device
    out = [g.G.synthesis(ws[i:i + batch_size].to(dev)).float().cpu() for i in range(0, len(ws), batch_size)]
    return torch.cat(out) if out else torch.empty(0, g.channels, g.resolution, g.resolution)


def mixing_layers(g: LoadedGenerator, group: str) -> list[int]:
    """The w indices of the coarse / middle / fine group (ValueError naming the valid ones otherwise)."""
    groups = layer_groups(g.G)
    if group not in groups:
        raise ValueError(f"unknown layer group {group!r}; valid: {', '.join(groups)}")
    return groups[group]


@torch.no_grad()
def mixing_grid(g: LoadedGenerator, source_seeds: Sequence[int], style_seeds: Sequence[int], group: str = "coarse",
                psi: float = 1.0, class_id: int | str | None = None) -> torch.Tensor:
    """((R + 1) * (C + 1), ch, H, W) images, row-major with C + 1 columns, for R source and C style seeds.

    Tile (0, 0) is blank (white); the rest of row 0 is the unmixed style images, the rest of column 0
    the unmixed sources; tile (i, j) is source i with the ``group`` styles of style seed j. Each row
    uses its source's class (conditional models), as ``python -m core generate --style-mix`` does.
    """
    if not is_style_based(g.G):
        raise ValueError(NO_MIXING.format(arch=g.cfg.arch))
    src, sty = [int(s) for s in source_seeds], [int(s) for s in style_seeds]
    if not src or not sty:
        raise ValueError("a mixing grid needs at least one source seed and one style seed")
    layers = mixing_layers(g, group)
    r, c = len(src), len(sty)
    z_src, z_sty = latents(src, g.latent_dim), latents(sty, g.latent_dim)
    none: list[int] = []
    # Unmixed images are "mixes" over no layers, so every tile goes through the same code path.
    tops = mix_styles(g.G, z_sty, z_sty, none, class_labels(g, sty, class_id), psi)
    lefts = mix_styles(g.G, z_src, z_src, none, class_labels(g, src, class_id), psi)
    mixed = mix_styles(g.G, z_src.repeat_interleave(c, 0), z_sty.repeat(r, 1), layers,
                       class_labels(g, [s for s in src for _ in sty], class_id), psi)
    tiles = [torch.ones_like(tops[0]), *tops]
    for i in range(r):
        tiles += [lefts[i], *mixed[i * c:(i + 1) * c]]
    return torch.stack(tiles)
