"""Decode one image file to a square uint8 array: orientation, mode conversion, resize, centre crop."""
from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image, ImageOps

from .errors import DataError

_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def _to_8bit_grey(im: Image.Image) -> Image.Image:
    """16/32-bit integer or float greyscale -> 8-bit L, scaled by range rather than clipped
    (Pillow's own convert("L") clips I;16 at 255, turning most 16-bit photos white)."""
    a = np.asarray(im)
    if im.mode in _SIXTEEN_BIT:
        out = (a.astype(np.uint16) >> 8).astype(np.uint8)
    else:  # "I" (int32) or "F": look at the values to infer the range
        a = a.astype(np.float64)
        lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
        if im.mode == "I" and lo >= 0 and hi <= 255:
            out = a.astype(np.uint8)
        elif im.mode == "I" and lo >= 0 and hi <= 65535:
            out = (a.astype(np.uint32) >> 8).astype(np.uint8)
        elif im.mode == "F" and lo >= 0 and hi <= 1.0:
            out = np.round(a * 255).astype(np.uint8)
        else:
            out = np.round((a - lo) * (255.0 / max(hi - lo, 1e-12))).astype(np.uint8)
    return Image.fromarray(out, mode="L")


def _cmyk_to_rgb(im: Image.Image) -> Image.Image:
    # With an embedded ICC profile, a colour-managed conversion is the correct one; Pillow's plain
    # convert is a naive formula that is only a fallback.
    icc = im.info.get("icc_profile")
    if icc:
        try:
            from PIL import ImageCms
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
        except Exception:
            pass
    return im.convert("RGB")


def to_rgb_or_l(im: Image.Image) -> Image.Image:
    """Any Pillow mode -> "L" or "RGB", with transparency composited on white."""
    mode = im.mode
    if mode == "1":
        return im.convert("L")
    if mode in _SIXTEEN_BIT or mode in ("I", "F"):
        if "transparency" in im.info:
            im.info.pop("transparency")  # a 16-bit tRNS value: rare; ignore rather than misconvert
        return _to_8bit_grey(im)
    if mode == "CMYK":
        return _cmyk_to_rgb(im)
    if mode in _ALPHA_MODES or "transparency" in im.info:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        out = Image.alpha_composite(white, rgba)
        return out.convert("L" if mode in ("LA", "La", "L") else "RGB")
    if mode in ("L", "RGB"):
        return im
    return im.convert("RGB")  # P, YCbCr, LAB, HSV, ...


def resize_center_crop(im: Image.Image, resolution: int) -> Image.Image:
    """Crop the centre square at source size, then scale it to ``resolution`` x ``resolution``.

    Cropping first bounds the work by the output: scaling the short side up before cropping turned
    a 35 KB 1 x 10,000 px PNG into a 256 x 2,560,000 image (about 2 GB) before the crop.
    """
    w, h = im.size
    side = min(w, h)
    # The box is in source pixels and may be fractional: the centre of an odd difference is exact.
    box = ((w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2)
    if side == resolution:
        return im if (w, h) == (side, side) else im.crop(tuple(round(v) for v in box))
    if side > resolution:
        # reducing_gap: a fast box pre-shrink then Lanczos; same quality, much faster for big photos.
        return im.resize((resolution, resolution), Image.Resampling.LANCZOS, box=box, reducing_gap=2.0)
    return im.resize((resolution, resolution), Image.Resampling.BICUBIC, box=box)


def load_image(path: str | os.PathLike, resolution: int, channels: int) -> np.ndarray:
    """Decode `path` to a uint8 array of shape (channels, resolution, resolution).

    channels: 1 (greyscale, ITU-R 601 luma) or 3 (RGB). Animated files give their first frame.
    """
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 or 3, got {channels}")
    if resolution < 1:
        raise DataError(f"resolution must be positive, got {resolution}")
    try:
        with Image.open(path) as im:
            im.seek(0)
            im.load()
            im = ImageOps.exif_transpose(im) or im
            im = to_rgb_or_l(im)
            im = im.convert("L" if channels == 1 else "RGB")
            im = resize_center_crop(im, resolution)
            a = np.asarray(im, dtype=np.uint8)
    except DataError:
        raise
    except Exception as e:
        shown = (os.fsencode(os.fspath(path)).decode("utf-8", errors="replace")
                 if isinstance(path, (str, bytes, os.PathLike)) else "uploaded image")  # a file object (serve)
        why = str(e) or type(e).__name__  # a MemoryError has no message: "cannot decode image ()" told nothing
        raise DataError(f"{shown}: cannot decode image ({why}). Rescan the folder if it changed.") from e
    if a.ndim == 2:
        a = a[None]
    else:
        a = a.transpose(2, 0, 1)
    return np.ascontiguousarray(a)


def _decode_chunk(paths: list[str], resolution: int, channels: int) -> np.ndarray:
    """Worker-process entry point: decode several files into one (k, C, R, R) block."""
    out = np.empty((len(paths), channels, resolution, resolution), dtype=np.uint8)
    for i, p in enumerate(paths):
        out[i] = load_image(p, resolution, channels)
    return out
