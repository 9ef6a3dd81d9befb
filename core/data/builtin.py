"""Built-in datasets by name: procedural "shapes" (offline), Fashion-MNIST, MNIST, CIFAR-10."""
from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .cache import CachedArrays, _dir, builtin_key, read_cache, write_cache
from .errors import DataError

BUILTIN_DATASETS: dict[str, str] = {
    "shapes": "8,000 procedural RGB images of 4 shapes (circle, square, triangle, ring); offline, learns in minutes.",
    "fashion-mnist": "60,000 28x28 greyscale clothing photos in 10 classes (Zalando); local copy or download.",
    "mnist": "60,000 28x28 greyscale handwritten digits in 10 classes; local copy or download.",
    "cifar10": "50,000 32x32 RGB photos in 10 classes (planes, cars, birds...); local copy or download (170 MB).",
}
NATURAL_CHANNELS = {"shapes": 3, "fashion-mnist": 1, "mnist": 1, "cifar10": 3}
SHAPE_CLASSES = ["circle", "square", "triangle", "ring"]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
MNIST_CLASSES = [str(i) for i in range(10)]
SHAPES_COUNT = 8000
SHAPES_SEED = 20240601
# Bump when a generator or reader changes what it produces, so stale caches are not reused.
_VERSIONS = {"shapes": 1, "fashion-mnist": 1, "mnist": 1, "cifar10": 1}
ProgressFn = Callable[[int, int], None]


# ------------------------------------------------------------------ shapes
def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    k = (np.array([5.0, 3.0, 1.0]) + h[:, None] * 6.0) % 6.0
    return v[:, None] - v[:, None] * s[:, None] * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def _shape_params(n: int, seed: int) -> dict[str, np.ndarray]:
    """All random choices up front, in normalised units: the same set at every resolution and
    independent of how rendering is chunked."""
    rng = np.random.default_rng(seed)
    p = {"cls": rng.permutation(np.arange(n) % len(SHAPE_CLASSES))}
    p["size"] = rng.uniform(0.16, 0.32, n)
    p["cx"] = rng.uniform(p["size"], 1 - p["size"])
    p["cy"] = rng.uniform(p["size"], 1 - p["size"])
    p["angle"] = rng.uniform(0, 2 * np.pi, n)
    light = rng.random(n) < 0.5
    # Background and shape sit on opposite sides of mid-grey so every shape is clearly visible.
    base = np.where(light[:, None], 0.55 + 0.45 * rng.random((n, 3)), 0.35 * rng.random((n, 3)))
    grad = rng.random(n) < 0.5
    other = np.clip(base + rng.uniform(-0.25, 0.25, (n, 3)), 0, 1)
    p["bg1"], p["bg2"] = base, np.where(grad[:, None], other, base)
    p["bg_dir"] = rng.uniform(0, 2 * np.pi, n)
    value = np.where(light, rng.uniform(0.1, 0.5, n), rng.uniform(0.7, 1.0, n))
    p["colour"] = _hsv_to_rgb(rng.random(n), rng.uniform(0.5, 1.0, n), value)
    return p


def _sdf(cls: np.ndarray, x: np.ndarray, y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Signed distance (normalised units, negative inside) to each image's shape; x, y are in the
    shape's rotated frame, shaped (n, R, R); cls and s are (n, 1, 1)."""
    r = np.hypot(x, y)
    circle = r - s
    ring = np.abs(r - s) - 0.3 * s
    h = 0.85 * s
    qx, qy = np.abs(x) - h, np.abs(y) - h
    square = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0)
    # Equilateral triangle centred on its centroid, half side a (Quilez's exact distance).
    a, k = 1.25 * s, np.sqrt(3.0)
    px, py = np.abs(x) - a, -y + a / k
    fold = px + k * py > 0
    px, py = np.where(fold, (px - k * py) / 2, px), np.where(fold, (-k * px - py) / 2, py)
    px = px - np.clip(px, -2 * a, 0)
    triangle = -np.hypot(px, py) * np.sign(py)
    return np.select([cls == 0, cls == 1, cls == 2], [circle, square, triangle], ring)


def render_shapes(params: dict[str, np.ndarray], start: int, stop: int, resolution: int) -> np.ndarray:
    """Render images start..stop as uint8 (n, 3, R, R), anti-aliased by analytic pixel coverage."""
    sl = slice(start, stop)
    g = (np.arange(resolution, dtype=np.float32) + 0.5) / resolution
    gx, gy = g[None, None, :], g[None, :, None]

    def col(name: str) -> np.ndarray:
        return params[name][sl].astype(np.float32)[:, None, None]

    dx, dy = gx - col("cx"), gy - col("cy")
    c, s = np.cos(col("angle")), np.sin(col("angle"))
    x, y = c * dx + s * dy, -s * dx + c * dy
    d = _sdf(params["cls"][sl][:, None, None], x, y, col("size"))
    alpha = np.clip(0.5 - d * resolution, 0.0, 1.0)[:, None]          # n x 1 x R x R
    t = np.clip(0.5 + (gx - 0.5) * np.cos(col("bg_dir")) + (gy - 0.5) * np.sin(col("bg_dir")), 0, 1)[:, None]
    bg1 = params["bg1"][sl].astype(np.float32)[:, :, None, None]
    bg2 = params["bg2"][sl].astype(np.float32)[:, :, None, None]
    fg = params["colour"][sl].astype(np.float32)[:, :, None, None]
    img = (bg1 * (1 - t) + bg2 * t) * (1 - alpha) + fg * alpha               # n x 3 x R x R
    return np.round(img * 255).astype(np.uint8)


def make_shapes(n: int, resolution: int, seed: int = SHAPES_SEED) -> tuple[np.ndarray, np.ndarray]:
    """n procedural images (n, 3, R, R) uint8 and their labels; deterministic for a given seed."""
    params = _shape_params(n, seed)
    out = np.empty((n, 3, resolution, resolution), dtype=np.uint8)
    step = max(1, 2**18 // (resolution * resolution))
    for i in range(0, n, step):
        out[i:i + step] = render_shapes(params, i, min(n, i + step), resolution)
    return out, params["cls"].astype(np.int64)


# ------------------------------------------------------------------ IDX (MNIST family)
def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally .gz) of unsigned bytes into an array of its declared shape."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read IDX file ({e}); delete it to re-fetch.") from e
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 0x08:
        raise DataError(f"{path}: not an unsigned-byte IDX file.")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataError(f"{path}: IDX file is truncated ({body.size} of {int(np.prod(dims))} values).")
    return body.reshape(dims)


def _idx_dirs(name: str, cache: Path) -> list[Path]:
    tv = {"fashion-mnist": "FashionMNIST", "mnist": "MNIST"}[name]
    return [Path("/usr/share/datasets") / name, cache / name, cache / tv / "raw"]


def _find_idx(name: str, cache: Path) -> tuple[Path, Path] | None:
    for d in _idx_dirs(name, cache):
        for ext in (".gz", ""):
            imgs, labs = d / f"train-images-idx3-ubyte{ext}", d / f"train-labels-idx1-ubyte{ext}"
            if imgs.is_file() and labs.is_file():
                return imgs, labs
    return None


def _load_mnist_like(name: str, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    found = _find_idx(name, cache)
    if found is None:
        try:
            import torchvision
            cls = torchvision.datasets.FashionMNIST if name == "fashion-mnist" else torchvision.datasets.MNIST
            cls(root=str(cache), train=True, download=True)
        except Exception as e:
            where = ", ".join(str(d) for d in _idx_dirs(name, cache))
            raise DataError(f"{name}: no local copy found (looked in {where}) and downloading failed ({e}). "
                            f"Copy train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz into "
                            f"{cache / name} or connect to the internet.") from e
        found = _find_idx(name, cache)
        if found is None:
            raise DataError(f"{name}: download finished but the files are not in {cache}.")
    images, labels = read_idx(found[0]), read_idx(found[1])
    if images.ndim != 3 or labels.shape != (images.shape[0],):
        raise DataError(f"{found[0]}: unexpected shapes {images.shape} / {labels.shape}.")
    return images[:, None], labels.astype(np.int64)


def _load_cifar10(cache: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    try:
        import torchvision
        try:
            ds = torchvision.datasets.CIFAR10(root=str(cache), train=True, download=False)
        except RuntimeError:  # not present locally
            ds = torchvision.datasets.CIFAR10(root=str(cache), train=True, download=True)
    except Exception as e:
        raise DataError(f"cifar10: no local copy in {cache} and downloading failed ({e}). Put the "
                        f"extracted cifar-10-batches-py folder in {cache} or connect to the internet.") from e
    return np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)), np.asarray(ds.targets, np.int64), list(ds.classes)


def _resize_block(block: np.ndarray, resolution: int, channels: int) -> np.ndarray:
    """(n, C, h, w) uint8 -> (n, channels, R, R) uint8: antialiased bilinear resize, colour change."""
    import torch
    import torch.nn.functional as F
    x = torch.from_numpy(np.ascontiguousarray(block)).float()
    if x.shape[1] == 3 and channels == 1:
        x = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    elif x.shape[1] == 1 and channels == 3:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[-1] != resolution or x.shape[-2] != resolution:
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False)
    return x.round().clamp_(0, 255).to(torch.uint8).numpy()


def load_builtin(name: str, resolution: int, channels: int = 0, cache_dir: str | os.PathLike | None = None,
                 progress: ProgressFn | None = None, memory_budget_mb: float = 2048) -> CachedArrays:
    """A built-in dataset as cached uint8 arrays; channels=0 picks the dataset's natural count."""
    if name not in BUILTIN_DATASETS:
        raise DataError(f"unknown built-in dataset {name!r}; valid: {', '.join(BUILTIN_DATASETS)}")
    channels = channels or NATURAL_CHANNELS[name]
    if channels not in (1, 3):
        raise DataError(f"channels must be 0, 1 or 3, got {channels}")
    key = builtin_key(name, resolution, channels, _VERSIONS[name])
    hit = read_cache(key, cache_dir, memory_budget_mb)
    if hit is not None:
        return hit
    cache = _dir(cache_dir)

    if name == "shapes":
        n, class_names = SHAPES_COUNT, SHAPE_CLASSES
        params = _shape_params(n, SHAPES_SEED)
        labels_src = params["cls"].astype(np.int64)

        def block(i: int, j: int) -> np.ndarray:
            return _resize_block(render_shapes(params, i, j, resolution), resolution, channels) \
                if channels == 1 else render_shapes(params, i, j, resolution)
    else:
        if name == "cifar10":
            src, labels_src, class_names = _load_cifar10(cache)
        else:
            src, labels_src = _load_mnist_like(name, cache)
            class_names = FASHION_CLASSES if name == "fashion-mnist" else MNIST_CLASSES
        n = src.shape[0]

        def block(i: int, j: int) -> np.ndarray:
            return _resize_block(src[i:j], resolution, channels)

    step = max(1, 2**18 // (resolution * resolution))

    def fill(images: np.ndarray, labels: np.ndarray) -> None:
        labels[:] = labels_src
        for i in range(0, n, step):
            j = min(n, i + step)
            images[i:j] = block(i, j)
            if progress:
                progress(j, n)

    meta = {"source": name, "kind": "builtin", "class_names": list(class_names),
            "resolution": resolution, "channels": channels}
    write_cache(key, (n, channels, resolution, resolution), fill, meta, cache)
    out = read_cache(key, cache, memory_budget_mb)
    if out is None:
        raise DataError(f"{name}: the dataset cache in {cache} could not be read back after writing it.")
    out.hit = False
    return out
