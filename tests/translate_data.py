"""Synthetic translation folders for the tests: B = coloured shapes, A = its greyscale (paired) or shapes of two styles (unpaired)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

# Colours whose greys differ, so greyscale -> colour has one right answer per pixel.
PALETTE = [(230, 40, 40), (40, 200, 60), (40, 60, 230), (250, 230, 60)]


def shapes_image(rng: np.random.Generator, size: int) -> Image.Image:
    im = Image.new("RGB", (size, size), (20, 20, 20))
    d = ImageDraw.Draw(im)
    for _ in range(3):
        x0, y0 = rng.integers(0, size * 3 // 4, 2)
        w, h = rng.integers(size // 5, size // 2, 2)
        box = [int(x0), int(y0), int(x0 + w), int(y0 + h)]
        colour = PALETTE[int(rng.integers(len(PALETTE)))]
        (d.ellipse if rng.random() < 0.5 else d.rectangle)(box, fill=colour)
    return im


def make_paired(root: Path, n: int = 40, size: int = 40, layout: str = "AB-folders", seed: int = 0) -> Path:
    """``layout``: AB-folders (A/ + B/ same names) or side-by-side (one AB image per pair)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    if layout == "AB-folders":
        (root / "A").mkdir(exist_ok=True)
        (root / "B").mkdir(exist_ok=True)
    for i in range(n):
        b = shapes_image(rng, size)
        a = b.convert("L").convert("RGB")
        if layout == "AB-folders":
            a.save(root / "A" / f"{i:03d}.png")
            b.save(root / "B" / f"{i:03d}.png")
        else:
            ab = Image.new("RGB", (2 * size, size))
            ab.paste(a, (0, 0))
            ab.paste(b, (size, 0))
            ab.save(root / f"{i:03d}.png")
    return root


def make_unpaired(root: Path, n: int = 12, size: int = 24, names: tuple[str, str] = ("A", "B"), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for k, name in enumerate(names):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            im = shapes_image(rng, size)
            if k == 0:
                im = im.convert("L").convert("RGB")
            im.save(root / name / f"{name}_{i:03d}.png")
    return root
