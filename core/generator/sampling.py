"""Images from a loaded generator: seeds -> latents -> images, reproducibly, and writing them as PNGs or a zip."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import torch
from torch import nn

from ..fsutil import atomic_write_bytes
from ..imaging import png_bytes, to_uint8
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


def generate_seeds(g: LoadedGenerator, seeds: list[int], truncation: float = 1.0,
                   class_id: int | str | None = None, batch_size: int = 64) -> torch.Tensor:
    """Images in [-1, 1] for ``seeds``: the same seed, truncation and class always give the same image."""
    z = latents(seeds, g.latent_dim, truncation)
    return generate(g.G, z, class_labels(g, seeds, class_id), batch_size)


def image_array(img: torch.Tensor):
    """One (C, H, W) image in [-1, 1] (or uint8) -> an HxW or HxWx3 uint8 numpy array."""
    arr = to_uint8(img[None])[0].numpy()
    return arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0)


def write_images(images: torch.Tensor, seeds: list[int], out: str | Path, as_zip: bool = False) -> Path:
    """Write one PNG per image named seed_NNNNNN.png into the folder ``out``, or into the zip file ``out``."""
    out = Path(out)
    if as_zip:
        if out.suffix.lower() != ".zip":
            out = out.with_name(out.name + ".zip") if out.name else out / "samples.zip"
        out.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:  # PNGs are compressed already
            for s, img in zip(seeds, images):
                info = zipfile.ZipInfo(f"seed_{s:06d}.png", date_time=(2020, 1, 1, 0, 0, 0))  # reproducible bytes
                zf.writestr(info, png_bytes(image_array(img)))
        atomic_write_bytes(out, buf.getvalue(), fsync=False)
        return out
    out.mkdir(parents=True, exist_ok=True)
    for s, img in zip(seeds, images):
        (out / f"seed_{s:06d}.png").write_bytes(png_bytes(image_array(img)))
    return out
