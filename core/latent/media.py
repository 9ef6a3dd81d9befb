"""Latent-explorer images out: animated GIFs (Pillow, no ffmpeg), PNG strips of frames and single PNGs."""
from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch


# ------------------------------------------------------------------ images out
def _frame_images(frames: torch.Tensor | Sequence[Any], scale: int):
    from PIL import Image

    from ..imaging import to_uint8
    out = []
    if isinstance(frames, torch.Tensor):
        arr = to_uint8(frames).numpy()
        arr = arr[:, 0] if arr.shape[1] == 1 else arr.transpose(0, 2, 3, 1)
        items: Sequence[Any] = list(arr)
    else:
        items = frames
    for f in items:
        if isinstance(f, (bytes, bytearray)):
            img = Image.open(io.BytesIO(f))
            img.load()
        elif isinstance(f, Image.Image):
            img = f
        else:
            img = Image.fromarray(np.asarray(f, dtype=np.uint8))
        img = img.convert("RGB") if img.mode not in ("L", "RGB") else img
        if scale > 1:
            img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
        out.append(img)
    return out


def gif_bytes(frames: torch.Tensor | Sequence[Any], fps: float = 12.0, scale: int = 1, loop: bool = True,
              boomerang: bool = False) -> bytes:
    """An animated GIF (Pillow, no ffmpeg) from frames: a (T, C, H, W) tensor in [-1, 1], uint8 arrays,
    PIL images or PNG bytes. ``scale`` upscales with nearest neighbour; ``boomerang`` plays back and forth."""
    imgs = _frame_images(frames, max(1, int(scale)))
    if not imgs:
        raise ValueError("no frames to animate")
    if boomerang and len(imgs) > 2:
        imgs = imgs + imgs[-2:0:-1]
    # GIF is palette-based: an adaptive palette per frame keeps colours faithful.
    from PIL import Image
    pal = [im.quantize(colors=256, method=Image.Quantize.MEDIANCUT) if im.mode == "RGB" else im for im in imgs]
    buf = io.BytesIO()
    duration = max(20, int(round(1000.0 / max(0.1, fps))))
    pal[0].save(buf, format="GIF", save_all=True, append_images=pal[1:], duration=duration,
                loop=0 if loop else 1, disposal=2, optimize=False)
    return buf.getvalue()


def strip_png(images: torch.Tensor, min_tile: int = 96) -> bytes:
    """One row of frames as PNG bytes (nearest-neighbour upscaled so small tiles are visible)."""
    from ..imaging import grid_png
    return grid_png(images, nrow=len(images), min_tile=min_tile)


def image_png(img: torch.Tensor, min_size: int = 256) -> bytes:
    """One (C, H, W) image as PNG bytes, upscaled by an integer factor to at least ``min_size`` px."""
    from ..generator import image_array
    from ..imaging import png_bytes
    s = max(1, int(math.ceil(min_size / img.shape[-1])))
    return png_bytes(image_array(img), scale=s)
