"""Small random-colour image folders for tests (a module, not conftest: test files import it by name)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def make_image_folder(root: Path, n: int = 12, size: int = 20, classes: tuple[str, ...] = ()) -> Path:
    """Write ``n`` small random-colour PNGs (spread over class subfolders if given)."""
    from PIL import Image
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        d = root / classes[i % len(classes)] if classes else root
        d.mkdir(exist_ok=True)
        arr = (rng.random((size, size + 4, 3)) * 255).astype(np.uint8)
        Image.fromarray(arr).save(d / f"img_{i:03d}.png")
    return root
