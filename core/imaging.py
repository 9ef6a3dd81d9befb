"""Image grids: tensors in [-1, 1] or uint8 to PNG bytes, with nearest-neighbour upscaling."""
from __future__ import annotations

import io
import math

import numpy as np
import torch
from PIL import Image


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) float in [-1, 1] (or uint8) -> uint8 on the CPU."""
    if images.dtype == torch.uint8:
        return images.cpu()
    x = images.detach().float().cpu()
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def grid_array(images: torch.Tensor, nrow: int | None = None, pad: int = 2, pad_value: int = 255) -> np.ndarray:
    """Tile a batch into one HxWxC (or HxW for grey) uint8 array with ``pad`` pixels between tiles."""
    x = to_uint8(images)
    b, c, h, w = x.shape
    nrow = nrow or max(1, int(math.ceil(math.sqrt(b))))
    ncol_rows = int(math.ceil(b / nrow))
    out = np.full((c, ncol_rows * (h + pad) + pad, nrow * (w + pad) + pad), pad_value, dtype=np.uint8)
    arr = x.numpy()
    for i in range(b):
        r, col = divmod(i, nrow)
        y0, x0 = pad + r * (h + pad), pad + col * (w + pad)
        out[:, y0:y0 + h, x0:x0 + w] = arr[i]
    return out[0] if c == 1 else out.transpose(1, 2, 0)


def png_bytes(array: np.ndarray, scale: int = 1) -> bytes:
    """Encode an HxW or HxWxC uint8 array as PNG, upscaled ``scale``x with nearest neighbour."""
    img = Image.fromarray(array)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def grid_png(images: torch.Tensor, nrow: int | None = None, min_tile: int = 0) -> bytes:
    """PNG bytes of a grid; tiles smaller than ``min_tile`` px are upscaled by an integer factor."""
    h = images.shape[-1]
    scale = max(1, int(math.ceil(min_tile / h))) if min_tile else 1
    return png_bytes(grid_array(images, nrow), scale=scale)


def upscale_png(data: bytes, min_width: int) -> bytes:
    """Nearest-neighbour upscale of a PNG so it is at least ``min_width`` wide (small grids stay crisp)."""
    img = Image.open(io.BytesIO(data))
    if img.width >= min_width:
        return data
    s = int(math.ceil(min_width / img.width))
    img = img.resize((img.width * s, img.height * s), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
