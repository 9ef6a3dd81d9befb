"""The Translate page's image steps: decode as the translate CLI does, run the network, PNGs to show."""
from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image, ImageOps


def decode(src, resolution: int, channels: int, half: int | None = None) -> np.ndarray:  # noqa: ANN001
    """A file path or uploaded file as the CLI decodes it: centre square, resized (uint8, C x H x W)."""
    from core.data.decode import resize_center_crop, to_rgb_or_l

    with Image.open(src) as im:
        im.seek(0)
        im = to_rgb_or_l(ImageOps.exif_transpose(im) or im).convert("L" if channels == 1 else "RGB")
        if half is not None:
            w, h = im.size
            im = im.crop((0, 0, w // 2, h) if half == 0 else (w // 2, 0, w, h))
        a = np.asarray(resize_center_crop(im, resolution), dtype=np.uint8)
    return np.ascontiguousarray(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))


def translate(G: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """uint8 C x H x W in, uint8 C x H x W out: exactly the translate CLI's transform."""
    from core.translate.cli import translate_array
    return translate_array(G, x)


def pil(a: np.ndarray) -> Image.Image:
    return Image.fromarray(a[0] if a.shape[0] == 1 else np.ascontiguousarray(a.transpose(1, 2, 0)))


def png(im: Image.Image, px: int | None = None) -> bytes:
    if px:
        im = im.resize((px, px), Image.NEAREST)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()
