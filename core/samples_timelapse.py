"""A run's progress timelapse: its fixed-noise sample grids (RUN/samples/step_*.png) as one animated GIF."""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

MAX_FRAMES = 48     # evenly spaced over training, first and last always in: a long run stays a few MB
MAX_WIDTH = 720     # frames are upscaled (nearest neighbour) towards this width, never past it
MIN_TILE = 64       # ... and so that a tile of the 8-wide grid is at least this many pixels
GRID_COLUMNS, GRID_PAD = 8, 2  # how core.train writes its sample grids (grid_png(nrow=8), 2 px padding)


def pick_frames(n: int, max_frames: int = MAX_FRAMES) -> list[int]:
    """Indices of at most ``max_frames`` of ``n`` frames, evenly spaced, the first and the last included."""
    if n <= 0:
        return []
    if max_frames < 2:
        raise ValueError(f"max_frames must be at least 2, got {max_frames}")
    if n <= max_frames:
        return list(range(n))
    return sorted({round(i * (n - 1) / (max_frames - 1)) for i in range(max_frames)})


def tile_px(grid_width: int, columns: int = GRID_COLUMNS, pad: int = GRID_PAD) -> int:
    """The tile size of a sample grid ``grid_width`` px wide (``columns`` tiles, ``pad`` px apart)."""
    return max(1, (grid_width - pad) // columns - pad)


def enlarge_scale(grid_width: int, min_tile: int = MIN_TILE, max_width: int | None = None) -> int:
    """The integer upscale that makes a grid's tiles at least ``min_tile`` px (within ``max_width``, if given)."""
    s = max(1, math.ceil(min_tile / tile_px(grid_width)))
    if max_width:
        s = max(1, min(s, max_width // max(1, grid_width)))
    return s


def _label(img, text: str):
    """``img`` with a white band above it saying ``text`` (which step this frame is)."""
    from PIL import Image, ImageDraw, ImageFont

    size = max(12, min(28, img.width // 24))
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        font = ImageFont.load_default()
    band = size + 10
    out = Image.new("RGB", (img.width, img.height + band), (255, 255, 255))
    out.paste(img, (0, band))
    ImageDraw.Draw(out).text((6, 4), text, fill=(30, 30, 30), font=font)
    return out


def timelapse_gif(grids: Sequence[tuple[int, str | Path]], max_frames: int = MAX_FRAMES, fps: float = 4.0,
                  min_tile: int = MIN_TILE, max_width: int = MAX_WIDTH, hold_last: int = 4) -> bytes:
    """An animated GIF of ``(step, png path)`` sample grids, oldest first, each frame labelled with its step.

    At most ``max_frames`` grids are used (evenly spaced); unreadable files are skipped. The last
    frame is repeated ``hold_last`` times so the final result stays on screen before the loop restarts.
    Raises ValueError when there is no grid to animate or none can be read.
    """
    from PIL import Image, UnidentifiedImageError

    from .latent.media import gif_bytes

    if not grids:
        raise ValueError("no sample grids to animate: the run's samples/ folder has no step_*.png yet")
    chosen = [grids[i] for i in pick_frames(len(grids), max_frames)]
    frames, size, scale = [], None, 1
    for step, path in chosen:
        try:
            with Image.open(path) as im:
                img = im.convert("RGB")
        except (OSError, UnidentifiedImageError, ValueError):
            continue  # a half-written or deleted grid: the timelapse goes on without it
        if size is None:
            size = img.size
            scale = enlarge_scale(img.width, min_tile, max_width)
        elif img.size != size:
            img = img.resize(size, Image.Resampling.NEAREST)
        if scale > 1:
            img = img.resize((size[0] * scale, size[1] * scale), Image.Resampling.NEAREST)
        frames.append(_label(img, "untrained generator (step 0)" if step == 0 else f"step {step:,}"))
    if not frames:
        raise ValueError(f"none of the {len(chosen)} sample grids could be read (e.g. {Path(chosen[-1][1]).name})")
    frames += [frames[-1]] * max(0, hold_last)
    return gif_bytes(frames, fps=fps)
